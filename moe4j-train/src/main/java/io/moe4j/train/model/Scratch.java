package io.moe4j.train.model;

import io.moe4j.nn.F32;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Backward-pass buffers shared by all blocks (each block's backward finishes before the next one starts), sized
 * for a capacity of rows (B·T) and sequence length; reallocated with the activations when a shape outgrows them.
 */
final class Scratch {
    final MemorySegment dResid;  // (N, d) ∂L/∂residual stream, updated block by block
    final MemorySegment dNorm;   // (N, d) ∂L/∂(a norm's output)
    final MemorySegment dCtx;    // (N, H·hd) ∂L/∂(attention context before wo)
    final MemorySegment dq;      // (N, H·hd)
    final MemorySegment dk;      // (N, KV·hd)
    final MemorySegment dv;      // (N, KV·hd)
    final MemorySegment dqRaw;   // (N, H·hd) before the q norm, null without qkNorm
    final MemorySegment dkRaw;   // (N, KV·hd)
    final MemorySegment dA, dH, dU; // (N, denseHidden) dense SwiGLU, null without dense layers
    final MemorySegment[] dP;    // per worker (T, T) ∂L/∂scores of one head

    Scratch(Arena arena, ModelConfig c, int rows, int seqLen, int workers) {
        int q = c.heads() * c.headDim(), kv = c.kvHeads() * c.headDim();
        dResid = F32.alloc(arena, (long) rows * c.dModel());
        dNorm = F32.alloc(arena, (long) rows * c.dModel());
        dCtx = F32.alloc(arena, (long) rows * q);
        dq = F32.alloc(arena, (long) rows * q);
        dk = F32.alloc(arena, (long) rows * kv);
        dv = F32.alloc(arena, (long) rows * kv);
        dqRaw = c.qkNorm() ? F32.alloc(arena, (long) rows * q) : null;
        dkRaw = c.qkNorm() ? F32.alloc(arena, (long) rows * kv) : null;
        boolean dense = c.denseLayers() > 0;
        long rf = (long) rows * c.denseHidden();
        dA = dense ? F32.alloc(arena, rf) : null;
        dH = dense ? F32.alloc(arena, rf) : null;
        dU = dense ? F32.alloc(arena, rf) : null;
        dP = new MemorySegment[workers];
        for (int w = 0; w < workers; w++) dP[w] = F32.alloc(arena, (long) seqLen * seqLen);
    }
}
