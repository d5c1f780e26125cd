package io.moe4j.moe;

/** NaN or Inf found where a finite number is required; the message says where (layer, tensor, token). */
public final class NonFiniteException extends ArithmeticException {
    public NonFiniteException(String message) { super(message); }
}
