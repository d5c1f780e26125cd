package io.moe4j.kernel.quant;

import io.moe4j.kernel.Lanes;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Vector API dot products of one weight row with one or four activation rows, for every weight format.
 *
 * <p><b>Why an abstract class with species accessors.</b> The Vector API is only fast when C2 sees each species as a
 * compile-time constant; a species read from an instance field is not one, and every vector operation then falls
 * back to slow Java code. Each width is therefore a tiny subclass ({@link W512}, {@link W256}, {@link W128}) whose
 * accessors return {@code static final} species; in a JVM that instantiates one width (production: the preferred
 * one) the accessor calls inline to constants. Tests that mix widths in one JVM stay correct but run slower.
 *
 * <p><b>Integer dot of a Q8_0 / Q4_0 block</b> (32 weights × 32 Q8_0 activations): weights are widened to shorts
 * and multiplied with the activation quants, pre-widened to shorts in {@link Activations}. A product fits a short
 * (|w| ≤ 128, |x| ≤ 127), and so does the sum of two products. Reinterpreting the shorts as ints and adding each
 * int's high and low short ({@link #pairSum}) gives per-int-lane partial sums of the block — the Java
 * equivalent of x86's {@code pmaddwd}, which the Vector API does not expose. The int lanes are converted to float
 * and FMA'd with the block scale {@code d_w·d_x} into per-lane accumulators, reduced once per row: no
 * horizontal reduction in the hot loop. Each block's integer sum is exact; the float accumulation order differs
 * from {@link ScalarQuantMatmul}'s block order, so results agree to rounding, not bit for bit.
 *
 * <p>Accumulators: Q8_0 two per activation row, even blocks in one and odd blocks in the other (two FMA chains in
 * flight); Q4_0 four, block b in accumulator b mod 4 (its cheaper blocks made the two FMA chains, whose
 * accumulators C2 also spills in its 8-fold unrolled loop, the limit: an integer-only variant of the loop ran
 * 1.5x faster). The one-row and multi-row kernels of a format use the same scheme, so a row's result does not
 * depend on N. The multi-row kernels hand their accumulators out through a float[] ({@link #sumLanes}): they are
 * past C2's NodeCountInliningCutoff, so a vector passed to {@link #hsum} there is boxed.
 *
 * <p>Q4_0 uses a 32-bit multiply on packed nibble pairs instead (see {@code dotQ4x1}), 256-bit at both widths.
 * Its int lanes are the same four-product sums as the previous 16-bit kernel at 256 bits, so results there are
 * unchanged; at 512 bits the float accumulation now runs in 8 lanes instead of 16 (rounding differs only).
 * Measured N = 1, one thread, same run as the bandwidth (QuantTiming, shared Zen4 with another job running):
 * Q4_0 6.5–7.7 → 8.3–8.8 GB/s (4096×4096, 65536×2048) next to a 15–22 GB/s read bandwidth — still
 * compute-bound, ~19 instructions per 18-byte block (scale decode, loop and FMA are now the bigger share);
 * Q8_0 unchanged at 15 GB/s. An isolated in-L2 comparison of the two Q4_0 kernels: 256-bit 6.4–8.0 → 8.5–10.4,
 * 512-bit 6.7–7.6 → 7.7–8.9 GB/s; unrolling two blocks per iteration was slower (inlining budget).
 * Command: {@code java --add-modules=jdk.incubator.vector -XX:Tier3DelayOn=100000 -cp target/classes:target/test-classes:…
 * io.moe4j.kernel.quant.QuantTiming 512 5} (and {@code 256}).
 */
abstract sealed class SimdDots permits SimdDots.W512, SimdDots.W256, SimdDots.W128 {
    static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** Floats: accumulators. */
    abstract VectorSpecies<Float> f();
    /** Ints, as many lanes as {@link #f()}: per-lane block sums. */
    abstract VectorSpecies<Integer> i();
    /** Shorts at full width (twice the float lanes): weight × activation products. */
    abstract VectorSpecies<Short> s();
    /** Shorts at half width (as many lanes as floats): F16 / BF16 weights. */
    abstract VectorSpecies<Short> sHalf();
    /** Bytes at half width (as many lanes as {@link #s()}): Q8_0 / Q4_0 weight bytes to widen. */
    abstract VectorSpecies<Byte> bHalf();
    /** Floats of the F16 / BF16 kernels (at 512 bits: 256-bit vectors, see dotF16). */
    abstract VectorSpecies<Float> hf();
    /** Ints, as many lanes as {@link #hf()}: two F16 / BF16 weights each. */
    abstract VectorSpecies<Integer> hi();
    /** Shorts, the same width as {@link #hf()}. */
    abstract VectorSpecies<Short> hs();
    /** Float lanes of the F16 / BF16 kernels: the activations' pair layout (see {@link Activations}). */
    final int pairLanes() { return hf().length(); }
    /** False for 128-bit vectors, where a block needs four short vectors: Q8_0/Q4_0 then use the scalar dots. */
    abstract boolean quantized();

    // ------------------------------------------------------------------------------------------- Q8_0 / Q4_0
    //
    // One method per format and row count, one block per loop iteration: C2 gives up inlining (and the Vector API
    // then boxes every vector) once a method's IR grows past NodeCountInliningCutoff, which a shared
    // "format flag" kernel or a two-block unroll reaches. Even/odd blocks still go to separate accumulators, by
    // swapping the pair after each block.

    /**
     * Q8_0·Q8_0 dots of weight row {@code off} ({@code nb} blocks) with {@code rowsX} (1..4) activation rows
     * starting at quant {@code xo} / scale {@code xdo}, one row every {@code 32·nb} quants: results in
     * {@code out[0..rowsX)}.
     */
    final void dotQ8(MemorySegment w, long off, int nb, short[] xq, int xo, float[] xd, int xdo, float[] out, int rowsX,
                     float[] lanes) {
        if (!quantized()) {
            for (int t = 0; t < rowsX; t++) out[t] = ScalarQuantMatmul.dotQ8_0(w, off, nb, xq, xo + t * 32 * nb, xd, xdo + t * nb);
        } else if (rowsX == 4 && s().length() == 32) {
            // four rows share each weight block's load and sign extension: 512 bits only. At 256 bits (two short
            // vectors a block) the four-row kernel passes C2's NodeCountInliningCutoff before its last row, whose
            // q8Sum / fmaScaled then run as calls on boxed vectors: measured 0.8 GB/s against 16 for N = 1
            // (bench kernels, -XX:UseAVX=2); there it is two two-row passes
            dotQ8x4(w, off, nb, xq, xo, xd, xdo, lanes);
            int L = f().length();
            for (int t = 0; t < 4; t++) out[t] = sumLanes(lanes, t * L, L);
        } else if (rowsX >= 2) {
            // two rows share each weight block's load and sign extension (an expert chosen by two tokens of a
            // batched decode step); a last odd row alone
            int L = f().length(), t = 0;
            for (; t + 2 <= rowsX; t += 2) {
                dotQ8x2(w, off, nb, xq, xo + t * 32 * nb, xd, xdo + t * nb, lanes);
                out[t] = sumLanes(lanes, 0, L);
                out[t + 1] = sumLanes(lanes, L, L);
            }
            if (t < rowsX) out[t] = dotQ8x1(w, off, nb, xq, xo + t * 32 * nb, xd, xdo + t * nb);
        } else {
            out[0] = dotQ8x1(w, off, nb, xq, xo, xd, xdo);
        }
    }

    /**
     * As {@link #dotQ8} for Q4_0 weights; the SIMD kernels read the activations in the packed layout
     * {@code xp} / {@code xc} of {@link Activations}, the scalar fallback (128 bits) reads {@code xq}.
     */
    final void dotQ4(MemorySegment w, long off, int nb, short[] xq, int[] xp, int[] xc, int xo, float[] xd, int xdo,
                     float[] out, int rowsX, float[] lanes) {
        if (!quantized()) {
            for (int t = 0; t < rowsX; t++) out[t] = ScalarQuantMatmul.dotQ4_0(w, off, nb, xq, xo + t * 32 * nb, xd, xdo + t * nb);
        } else {
            // two activation rows per weight pass (a four-row Q4_0 kernel measured 4x slower: C2 stops inlining
            // its vector helpers), a third alone; the weight row is re-read from L1, the chunk from L2
            int t = 0;
            for (; t + 2 <= rowsX; t += 2) {
                dotQ4x2(w, off, nb, xp, xc, xo + t * 32 * nb, xd, xdo + t * nb, lanes);
                out[t] = sumLanes(lanes, 0, 8);
                out[t + 1] = sumLanes(lanes, 8, 8);
            }
            if (t < rowsX) out[t] = dotQ4x1(w, off, nb, xp, xc, xo + t * 32 * nb, xd, xdo + t * nb);
        }
    }

    /**
     * {@link Lanes#sum} (Σ lanes left to right from 0, the same bits) by constant-index lane extraction. Lanes.sum
     * goes through a float[] that escape analysis removes only when it is inlined; called from these big kernels it
     * was not, and allocated one array per output row (~40 KB per decode step, 15 % of decode time in a profile).
     */
    static float hsum(FloatVector v) {
        return switch (v.length()) {
            case 8 -> 0f + v.lane(0) + v.lane(1) + v.lane(2) + v.lane(3) + v.lane(4) + v.lane(5) + v.lane(6) + v.lane(7);
            case 16 -> 0f + v.lane(0) + v.lane(1) + v.lane(2) + v.lane(3) + v.lane(4) + v.lane(5) + v.lane(6) + v.lane(7)
                    + v.lane(8) + v.lane(9) + v.lane(10) + v.lane(11) + v.lane(12) + v.lane(13) + v.lane(14) + v.lane(15);
            default -> Lanes.sum(v);
        };
    }

    /** One weight row · one activation row (quants {@code xo}, scales {@code xdo}); 256 and 512 bits only. */
    final float dotQ8x1(MemorySegment w, long off, int nb, short[] xq, int xo, float[] xd, int xdo) {
        FloatVector even = FloatVector.zero(f()), odd = even;
        for (int b = 0; b < nb; b++) {
            long o = off + 34L * b;
            IntVector sum = q8Sum(q8Lo(w, o), q8Hi(w, o), xq, xo + 32 * b);
            FloatVector acc = fmaScaled(sum, dw(w, o) * xd[xdo + b], even);
            even = odd; // next block goes to the other accumulator
            odd = acc;
        }
        return hsum(even.add(odd));
    }

    /** {@link #dotQ8x4} for two activation rows: each row's sum is accumulated exactly as {@link #dotQ8x1} does. */
    private void dotQ8x2(MemorySegment w, long off, int nb, short[] xq, int xo, float[] xd, int xdo, float[] lanes) {
        int k = 32 * nb;
        FloatVector e0 = FloatVector.zero(f()), e1 = e0, o0 = e0, o1 = e0;
        for (int b = 0; b < nb; b++) {
            long o = off + 34L * b;
            ShortVector lo = q8Lo(w, o), hi = q8Hi(w, o);
            float d = dw(w, o);
            int xb = xo + 32 * b, db = xdo + b;
            FloatVector n0 = fmaScaled(q8Sum(lo, hi, xq, xb), d * xd[db], e0);
            FloatVector n1 = fmaScaled(q8Sum(lo, hi, xq, xb + k), d * xd[db + nb], e1);
            e0 = o0; e1 = o1;
            o0 = n0; o1 = n1;
        }
        // out through lanes (see sumLanes): hsum is not inlined here (NodeCountInliningCutoff) and would box
        int L = f().length();
        e0.add(o0).intoArray(lanes, 0);
        e1.add(o1).intoArray(lanes, L);
    }

    private void dotQ8x4(MemorySegment w, long off, int nb, short[] xq, int xo, float[] xd, int xdo, float[] lanes) {
        int k = 32 * nb;
        FloatVector e0 = FloatVector.zero(f()), e1 = e0, e2 = e0, e3 = e0, o0 = e0, o1 = e0, o2 = e0, o3 = e0;
        for (int b = 0; b < nb; b++) {
            long o = off + 34L * b;
            ShortVector lo = q8Lo(w, o), hi = q8Hi(w, o); // unpacked once for four activation rows
            float d = dw(w, o);
            int xb = xo + 32 * b, db = xdo + b;
            FloatVector n0 = fmaScaled(q8Sum(lo, hi, xq, xb), d * xd[db], e0);
            FloatVector n1 = fmaScaled(q8Sum(lo, hi, xq, xb + k), d * xd[db + nb], e1);
            FloatVector n2 = fmaScaled(q8Sum(lo, hi, xq, xb + 2 * k), d * xd[db + 2 * nb], e2);
            FloatVector n3 = fmaScaled(q8Sum(lo, hi, xq, xb + 3 * k), d * xd[db + 3 * nb], e3);
            e0 = o0; e1 = o1; e2 = o2; e3 = o3;
            o0 = n0; o1 = n1; o2 = n2; o3 = n3;
        }
        // out through lanes (see sumLanes): measured, hsum was not inlined here (NodeCountInliningCutoff) and boxed
        // three vectors per weight row
        int L = f().length();
        e0.add(o0).intoArray(lanes, 0);
        e1.add(o1).intoArray(lanes, L);
        e2.add(o2).intoArray(lanes, 2 * L);
        e3.add(o3).intoArray(lanes, 3 * L);
    }

    /*
     * Q4_0 (both widths use 256-bit vectors here: on Zen4 the 512-bit version of this kernel measured ~15 % slower,
     * its 512-bit operations being double-pumped). A block's 16 bytes are zero-extended to 16 shorts, viewed as
     * 8 int lanes of two whole bytes B0 + 65536·B1 (B = low nibble + 16·high nibble), and shifted right by 4 as
     * shorts, giving the two high nibbles h0 + 65536·h1. One 32-bit multiply of each by an activation lane
     * (Activations.packQ4Block: P1 = c + 65536·d with the low nibbles' activations, P2 = the high nibbles'
     * activations minus 16 times P1's) is ≡ lower + 65536·upper mod 2^32, where the sum of the two uppers is
     * exactly the four products (nibble)·x of the lane — the high nibbles inside the whole bytes times P1 are
     * cancelled by P2's −16 terms, so no nibble mask is needed — and the lowers add up to at most ±3810. Adding the
     * lane's precomputed 0x8000 − 65536·8·Σx (offset −8 of every nibble, folded in; 0x8000 keeps the lower half in
     * [0, 65536)), an arithmetic shift by 16 leaves the exact sum of four (q − 8)·x products per lane — the same
     * int lanes as the earlier masked kernel, in load-widen, shift, 2 multiplies, 2 adds, shift (7 operations,
     * then convert and FMA) instead of 9 (two masks fewer).
     *
     * Measured (QuantAB, same JVM, old and new build interleaved, 1 thread, loaded shared machine, best of 11):
     * masks removed 1.07–1.16x (3584×1024 and 4096×4096, from DRAM), 1.04–1.09x with the weights in L3.
     * Per-block cost split by variants of the loop (in L3, 3584×4096): integer part alone 16.5 GB/s, + float
     * accumulation with a constant scale 14.3, + the fp16 scale decode (scalar vcvtph2ps, multiply, broadcast)
     * 11.0: the float side is ~1/3 of the time. Not kept: two weight rows per pass (slower: 0.82–0.97x), four
     * weight rows (C2 NodeCountInliningCutoff: 0.3x), copying the row to a byte[] first (0.75x), two blocks
     * combined before one accumulator update (0.8–0.95x).
     */

    private static final VectorSpecies<Float> F4 = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I4 = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> S4 = ShortVector.SPECIES_256;
    private static final VectorSpecies<Byte> B4 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Short> S2 = ShortVector.SPECIES_128;
    private static final VectorSpecies<Long> L2 = LongVector.SPECIES_128;

    /** One weight row · one activation row in the packed layout of {@link Activations}; 256 and 512 bits only. */
    static float dotQ4x1(MemorySegment w, long off, int nb, int[] xp, int[] xc, int xo, float[] xd, int xdo) {
        FloatVector a0 = FloatVector.zero(F4), a1 = a0, a2 = a0, a3 = a0;
        int p = xo / 2, c = xo / 4;
        for (int b = 0; b < nb; b++) {
            long o = off + 18L * b;
            IntVector sum = q4Sum(q4Bytes(w, o), xp, xc, p + 16 * b, c + 8 * b);
            FloatVector acc = ((FloatVector) sum.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F4, dw(w, o) * xd[xdo + b]), a0);
            a0 = a1; // block b + 1 goes to the next of four accumulators (see Q4_ACCUMULATORS)
            a1 = a2;
            a2 = a3;
            a3 = acc;
        }
        return hsum(a0.add(a1).add(a2.add(a3)));
    }

    /**
     * Q4_0 dots of one weight row with two activation rows (quant {@code xo} and {@code xo + 32·nb}), each
     * accumulated exactly as {@link #dotQ4x1} does (same bits): the weight block's load, widening, shift and scale
     * decode are shared. Written out with no helper calls and leaving through {@code lanes} (row 0's 8 lanes at
     * {@code lanes[0..8)}, row 1's at {@code [8..16)}, summed by {@link #sumLanes}): at this size C2 stops
     * inlining non-intrinsic helpers (NodeCountInliningCutoff), and a vector passed to a helper that is not inlined
     * is boxed.
     */
    static void dotQ4x2(MemorySegment w, long off, int nb, int[] xp, int[] xc, int xo, float[] xd, int xdo, float[] lanes) {
        FloatVector a0 = FloatVector.zero(F4), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int p = xo / 2, c = xo / 4, k = 32 * nb;
        int p1 = p + k / 2, c1 = c + k / 4, xd1 = xdo + nb;
        for (int b = 0; b < nb; b++) {
            long o = off + 18L * b;
            IntVector v = ((ShortVector) ByteVector.fromMemorySegment(B4, w, o + 2, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S4, 0)).reinterpretAsInts();
            IntVector u = v.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 4).reinterpretAsInts();
            float d = Float.float16ToFloat(w.get(SHORT_LE, o));
            int pb = p + 16 * b, qb = p1 + 16 * b;
            IntVector s0 = v.mul(IntVector.fromArray(I4, xp, pb)).add(u.mul(IntVector.fromArray(I4, xp, pb + 8)))
                    .add(IntVector.fromArray(I4, xc, c + 8 * b)).lanewise(VectorOperators.ASHR, 16);
            IntVector s1 = v.mul(IntVector.fromArray(I4, xp, qb)).add(u.mul(IntVector.fromArray(I4, xp, qb + 8)))
                    .add(IntVector.fromArray(I4, xc, c1 + 8 * b)).lanewise(VectorOperators.ASHR, 16);
            FloatVector n0 = ((FloatVector) s0.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F4, d * xd[xdo + b]), a0);
            FloatVector n1 = ((FloatVector) s1.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F4, d * xd[xd1 + b]), b0);
            a0 = a1; a1 = a2; a2 = a3; a3 = n0;
            b0 = b1; b1 = b2; b2 = b3; b3 = n1;
        }
        a0.add(a1).add(a2.add(a3)).intoArray(lanes, 0);
        b0.add(b1).add(b2.add(b3)).intoArray(lanes, 8);
    }

    /**
     * {@link #hsum} of the {@code count} lanes stored at {@code lanes[at..)}: the same order (0 + lane 0 + lane 1
     * ...), so the same bits. The multi-row kernels hand their accumulators out this way: they are past C2's
     * NodeCountInliningCutoff, so a vector passed to hsum (not inlined) would be boxed.
     */
    static float sumLanes(float[] lanes, int at, int count) {
        float s = 0f;
        for (int i = 0; i < count; i++) s += lanes[at + i];
        return s;
    }

    /** A Q4_0 block's 16 nibble bytes zero-extended to 16 shorts, seen as 8 int lanes of two bytes. */
    private static IntVector q4Bytes(MemorySegment w, long o) {
        return ((ShortVector) ByteVector.fromMemorySegment(B4, w, o + 2, LE)
                .convertShape(VectorOperators.ZERO_EXTEND_B2S, S4, 0)).reinterpretAsInts();
    }

    /** Exact per-lane sums of (q − 8)·x, four products a lane, from a block's bytes {@code v} (see above). */
    private static IntVector q4Sum(IntVector v, int[] xp, int[] xc, int pb, int cb) {
        IntVector u = v.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 4).reinterpretAsInts();
        return v.mul(IntVector.fromArray(I4, xp, pb)).add(u.mul(IntVector.fromArray(I4, xp, pb + 8)))
                .add(IntVector.fromArray(I4, xc, cb)).lanewise(VectorOperators.ASHR, 16);
    }

    // ------------------------------------------------------------------------------------------- Q4_K / Q6_K
    //
    // Both K-quants use 256-bit vectors at 256 and 512 bits (the same choice as Q4_0), 128-bit falls back to the
    // scalar dots. Per super-block (256 weights, Q8_K activations as shorts): each sub-block's quants are widened
    // to 16-lane short vectors and multiplied with the activation shorts (|q·x| ≤ 32·127 fits a short, and so
    // does the sum of two), pair-summed into 8 int lanes (pairSum), multiplied by the sub-block's integer scale
    // and added into one int vector: its lanes add up to the super-block's exact Σ_j scale_j·dot_j, as in ggml.
    // The float part is one FMA with d_w·d_x per super-block into two alternating accumulators; Q4_K's min
    // term (dmin_w·d_x·Σ_j m_j·bsum_j, scalar) goes into a separate float sum, subtracted at the end. So
    // integer sums equal ScalarQuantMatmul's and only the float accumulation order differs from ggml's generic.
    //
    // Measured (QuantTiming -Dshapes=4096x4096, simd-512, N = 1, best of 5, Zen4 2 cores, shared and noisy; read
    // bandwidth 19–23 GB/s with 1 thread in the same runs). Before: Q4_K 3.9–4.1 GB/s, Q6_K 0.9–1.3 (q6kPart not
    // inlined: NodeCountInliningCutoff, boxed), and Q8_0 0.8 when timed after the K-quants in one JVM. After
    // (no vector helpers, Q6_K offset via bsums, Q4_K min term vectorised): Q4_K 4.2–4.5, Q6_K 5.9–6.9, and with
    // all seven formats in one JVM each runs at its single-format speed (Q8_0 16.3). Open: both K-quants are
    // compute-bound at ~8 G weights/s; the per-16/32-element pairSum + scale multiply is the floor without a
    // pmaddwd-like operation in the Vector API.

    /**
     * Q4_K·Q8_K dots of weight row {@code off} ({@code nb} super-blocks) with {@code rowsX} activation rows from
     * quant {@code xo}, scale {@code xdo}, bsum {@code xbo}, one row every {@code 256·nb} quants.
     */
    final void dotQ4K(MemorySegment w, long off, int nb, short[] xq, int xo, float[] xd, int xdo, short[] xb, int xbo,
                      float[] out, int rowsX) {
        int k = 256 * nb;
        for (int t = 0; t < rowsX; t++) {
            out[t] = quantized()
                    ? dotQ4Kx1(w, off, nb, xq, xo + t * k, xd, xdo + t * nb, xb, xbo + t * k / 16)
                    : ScalarQuantMatmul.dotQ4_K(w, off, nb, xq, xo + t * k, xd, xdo + t * nb, xb, xbo + t * k / 16);
        }
    }

    /** As {@link #dotQ4K} for Q6_K weights (the SIMD kernel applies the −32 offset through the bsums). */
    final void dotQ6K(MemorySegment w, long off, int nb, short[] xq, int xo, float[] xd, int xdo, short[] xb, int xbo,
                      float[] out, int rowsX) {
        int k = 256 * nb;
        for (int t = 0; t < rowsX; t++) {
            out[t] = quantized()
                    ? dotQ6Kx1(w, off, nb, xq, xo + t * k, xd, xdo + t * nb, xb, xbo + t * k / 16)
                    : ScalarQuantMatmul.dotQ6_K(w, off, nb, xq, xo + t * k, xd, xdo + t * nb, null, 0);
        }
    }

    // Both K-quant kernels are written out in full, with no vector-typed helper method (not even pairSum, shared
    // with Q8_0): a helper called from several kernels (or from C1 code, which does not inline vector code) gets
    // its own C2 compilation; once that is "a big method" (InlineSmallCode) no later caller inlines it, and every
    // vector crossing the call is boxed. That is what made Q8_0 fall from 15 to 0.8 GB/s after the K-quants ran
    // in the same JVM (PrintInlining: "SimdDots::pairSum ... failed to inline: already compiled into a big
    // method" inside dotQ8x1), and what kept Q6_K at 1 GB/s (q6kPart: NodeCountInliningCutoff).

    private static float dotQ4Kx1(MemorySegment w, long off, int nb, short[] xq, int xo, float[] xd, int xdo, short[] xb, int xbo) {
        FloatVector even = FloatVector.zero(F4), odd = even, minAcc = even;
        for (int b = 0; b < nb; b++) {
            long o = off + 144L * b;
            int x0 = xo + 256 * b;
            long scales = ScalarQuantMatmul.q4kScales(w, o + 4);
            IntVector sum = IntVector.zero(I4);
            for (int c = 0; c < 4; c++) { // 32 bytes: sub-block 2c in the low nibbles, 2c + 1 in the high ones
                long q = o + 16 + 32 * c;
                int x = x0 + 64 * c;
                ShortVector v0 = (ShortVector) ByteVector.fromMemorySegment(B4, w, q, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S4, 0);
                ShortVector v1 = (ShortVector) ByteVector.fromMemorySegment(B4, w, q + 16, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S4, 0);
                IntVector lo = v0.and((short) 0x0f).mul(ShortVector.fromArray(S4, xq, x))
                        .add(v1.and((short) 0x0f).mul(ShortVector.fromArray(S4, xq, x + 16))).reinterpretAsInts();
                IntVector hi = v0.lanewise(VectorOperators.LSHR, 4).mul(ShortVector.fromArray(S4, xq, x + 32))
                        .add(v1.lanewise(VectorOperators.LSHR, 4).mul(ShortVector.fromArray(S4, xq, x + 48))).reinterpretAsInts();
                // pair sums (each int's two shorts added: they fit a short), times the sub-block scales
                sum = sum.add(lo.add(lo.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16)
                                .mul((int) (scales >>> (16 * c)) & 0xff))
                        .add(hi.add(hi.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16)
                                .mul((int) (scales >>> (16 * c + 8)) & 0xff));
            }
            float dx = xd[xdo + b];
            even = ((FloatVector) sum.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F4, dw(w, o) * dx), even);
            // min term: lane j = m_j · (bsum_2j + bsum_2j+1); mins (6 bits) as the 8 bytes of a long
            IntVector m = (IntVector) LongVector.broadcast(L2, ScalarQuantMatmul.q4kMins(w, o + 4)).reinterpretAsBytes()
                    .convertShape(VectorOperators.B2I, I4, 0);
            IntVector bs = ShortVector.fromArray(S4, xb, xbo + 16 * b).reinterpretAsInts();
            bs = bs.add(bs.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            minAcc = ((FloatVector) m.mul(bs).convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F4, Float.float16ToFloat(w.get(SHORT_LE, o + 2)) * dx), minAcc);
            FloatVector swap = even; // next super-block goes to the other accumulator
            even = odd;
            odd = swap;
        }
        return hsum(even.add(odd).sub(minAcc));
    }

    /**
     * Each step takes 16 bytes of ql (low nibbles), 16 more (high nibbles) and 16 of qh: four 16-element groups.
     * The quants are used without their −32 offset (q·x ≤ 63·128 and a pair of them fit a short); the offset
     * comes back as −32·Σ_g scale_g·bsum_g, added to the same int lanes, so the integer sum stays exact.
     */
    private static float dotQ6Kx1(MemorySegment w, long off, int nb, short[] xq, int xo, float[] xd, int xdo, short[] xb, int xbo) {
        FloatVector even = FloatVector.zero(F4), odd = even;
        for (int b = 0; b < nb; b++) {
            long o = off + 210L * b;
            int x0 = xo + 256 * b;
            long sc = o + 192;
            // offset term first: scales (16 signed bytes) · bsums (16 shorts), in two halves of 8 int lanes
            IntVector sum = ((IntVector) ByteVector.fromMemorySegment(B8, w, sc, LE).convertShape(VectorOperators.B2I, I4, 0))
                    .mul((IntVector) ShortVector.fromArray(S2, xb, xbo + 16 * b).convertShape(VectorOperators.S2I, I4, 0))
                    .add(((IntVector) ByteVector.fromMemorySegment(B8, w, sc + 8, LE).convertShape(VectorOperators.B2I, I4, 0))
                            .mul((IntVector) ShortVector.fromArray(S2, xb, xbo + 16 * b + 8).convertShape(VectorOperators.S2I, I4, 0)))
                    .lanewise(VectorOperators.LSHL, 5).neg();
            for (int step = 0; step < 4; step++) {
                int h = step >> 1, g = step & 1;              // half (128 elements), 16-element group within 32
                long ql = o + 64 * h + 16 * g, s = sc + 8 * h + g;
                ShortVector a = (ShortVector) ByteVector.fromMemorySegment(B4, w, ql, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S4, 0);
                ShortVector bb = (ShortVector) ByteVector.fromMemorySegment(B4, w, ql + 32, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S4, 0);
                ShortVector hb = (ShortVector) ByteVector.fromMemorySegment(B4, w, o + 128 + 32 * h + 16 * g, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S4, 0);
                int x = x0 + 128 * h + 16 * g;
                IntVector p1 = a.and((short) 0x0f).or(hb.and((short) 0x03).lanewise(VectorOperators.LSHL, 4))
                        .mul(ShortVector.fromArray(S4, xq, x)).reinterpretAsInts();
                IntVector p2 = bb.and((short) 0x0f).or(hb.and((short) 0x0c).lanewise(VectorOperators.LSHL, 2))
                        .mul(ShortVector.fromArray(S4, xq, x + 32)).reinterpretAsInts();
                IntVector p3 = a.lanewise(VectorOperators.LSHR, 4).or(hb.and((short) 0x30))
                        .mul(ShortVector.fromArray(S4, xq, x + 64)).reinterpretAsInts();
                IntVector p4 = bb.lanewise(VectorOperators.LSHR, 4).or(hb.lanewise(VectorOperators.LSHR, 2).and((short) 0x30))
                        .mul(ShortVector.fromArray(S4, xq, x + 96)).reinterpretAsInts();
                sum = sum.add(p1.add(p1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul(w.get(ValueLayout.JAVA_BYTE, s)))
                        .add(p2.add(p2.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul(w.get(ValueLayout.JAVA_BYTE, s + 2)))
                        .add(p3.add(p3.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul(w.get(ValueLayout.JAVA_BYTE, s + 4)))
                        .add(p4.add(p4.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul(w.get(ValueLayout.JAVA_BYTE, s + 6)));
            }
            float d = Float.float16ToFloat(w.get(SHORT_LE, o + 208)) * xd[xdo + b];
            FloatVector acc = ((FloatVector) sum.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F4, d), even);
            even = odd;
            odd = acc;
        }
        return hsum(even.add(odd));
    }

    /** The weight block's scale d_w (fp16 at the block start). */
    private static float dw(MemorySegment w, long blockOff) {
        return Float.float16ToFloat(w.get(SHORT_LE, blockOff));
    }

    /** acc + float(sum) · scale, lane by lane. */
    private FloatVector fmaScaled(IntVector sum, float scale, FloatVector acc) {
        return sum.convert(VectorOperators.I2F, 0).reinterpretAsFloats().fma(FloatVector.broadcast(f(), scale), acc);
    }

    /*
     * A block's weights as one or two short vectors (lo, hi), multiplied by the matching activation shorts:
     *   512 bits:       lo = all 32 weights (hi unused)
     *   256 bits:       lo = weights 0..15, hi = weights 16..31
     * (Q4_0: see dotQ4x1.) Bytes are sign-extended (B2S), measured faster here than zero-extending.
     */

    private ShortVector q8Lo(MemorySegment w, long o) {
        return (ShortVector) ByteVector.fromMemorySegment(bHalf(), w, o + 2, LE).convertShape(VectorOperators.B2S, s(), 0);
    }

    private ShortVector q8Hi(MemorySegment w, long o) {
        if (s().length() == 32) return null;
        return (ShortVector) ByteVector.fromMemorySegment(bHalf(), w, o + 18, LE).convertShape(VectorOperators.B2S, s(), 0);
    }

    /** Per-int-lane partial sums of a Q8_0 block's integer dot; the lanes add up to the exact block sum. */
    private IntVector q8Sum(ShortVector lo, ShortVector hi, short[] xq, int xb) {
        VectorSpecies<Short> S = s();
        ShortVector p = lo.mul(ShortVector.fromArray(S, xq, xb));
        if (S.length() == 32) return pairSum(p);
        // each short now holds up to 2·128·127: the pair may overflow a short, so add it in ints
        return pairSumWide(p.add(hi.mul(ShortVector.fromArray(S, xq, xb + 16))));
    }

    /** Adds the two shorts of each int lane; valid while their sum fits a short. Three operations. */
    private static IntVector pairSum(ShortVector p) {
        IntVector a = p.reinterpretAsInts();
        return a.add(a.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
    }

    /** Adds the two shorts of each int lane, any values. Four operations. */
    private static IntVector pairSumWide(ShortVector p) {
        IntVector a = p.reinterpretAsInts();
        return a.lanewise(VectorOperators.ASHR, 16).add(a.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
    }

    // ------------------------------------------------------------------------------------------- F32 / F16 / BF16

    /** Σ w[j]·x[xo+j] over {@code len} F32 weights at byte {@code off}. */
    final float dotF32(MemorySegment w, long off, float[] x, int xo, int len) {
        VectorSpecies<Float> F = f();
        int L = F.length();
        FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
        int j = 0;
        for (; j + 4 * L <= len; j += 4 * L) {
            long o = off + 4L * j;
            s0 = FloatVector.fromMemorySegment(F, w, o, LE).fma(FloatVector.fromArray(F, x, xo + j), s0);
            s1 = FloatVector.fromMemorySegment(F, w, o + 4L * L, LE).fma(FloatVector.fromArray(F, x, xo + j + L), s1);
            s2 = FloatVector.fromMemorySegment(F, w, o + 8L * L, LE).fma(FloatVector.fromArray(F, x, xo + j + 2 * L), s2);
            s3 = FloatVector.fromMemorySegment(F, w, o + 12L * L, LE).fma(FloatVector.fromArray(F, x, xo + j + 3 * L), s3);
        }
        for (; j + L <= len; j += L) {
            s0 = FloatVector.fromMemorySegment(F, w, off + 4L * j, LE).fma(FloatVector.fromArray(F, x, xo + j), s0);
        }
        float sum = hsum(s0.add(s1).add(s2.add(s3)));
        return sum + ScalarQuantMatmul.dotF32(w, off + 4L * j, x, xo + j, len - j);
    }

    /*
     * F16 / BF16: pairs. The Vector API has no half-float conversion (JDK 25: no Float16Vector, no HF conversion
     * in VectorOperators; C2 only uses vcvtph2ps for scalar Float.float16ToFloat and auto-vectorised array loops).
     * So the weights are loaded as ints, two 16-bit values per lane, and decoded in place: the low halves
     * (even elements) by a shift left, the high halves (odd elements) by a mask — no widening load, no shuffle.
     * The activations are stored to match (Activations, "pair layout"): within each group of 2L elements
     * (L = float lanes), the L even elements first, then the L odd ones; the < 2L elements after the last full
     * group stay in order.
     *
     * F16 decode, 2 or 3 ops a vector: the half's sign goes to bit 31 and its exponent and mantissa to the top of
     * a float's fields (bits 13..27) by an arithmetic shift right by 3 and a mask — a float whose value is the
     * half's times 2^-112 (a half subnormal becomes a float subnormal, exactly). Instead of multiplying by 2^112
     * to rebias, the activations are stored times 2^112 (exact: |x| <= 65504 < 2^16 after the F16 rounding), so
     * the FMA's exact product is the same w·x. Infinity and NaN (half exponent 31) would decode as finite
     * numbers: a two-op check per vector (lanewise min of ~w & 0x7c00 over shorts) notices them, and such a
     * (rare) row is recomputed with the exact decode (dotF16Exact).
     *
     * Width: at 512 bits these kernels still use 256-bit vectors (hf()/hi()/hs()): from DRAM on Zen4 they measured
     * faster (65536×2048, 1 thread: F16 22–24 vs 19–20 GB/s, BF16 16–25 vs 15–16), equal at 4096×4096.
     *
     * Measured (QuantTiming -Dtypes=F16,BF16, 1 / 2 threads, Zen4 2 cores, read bandwidth 22–24 / 29–33 GB/s in
     * the same runs; the machine is noisy, best of 3 runs of best-of-5):
     *   F16  4096×4096   4.1–5.2 / 7.6–8.0  →  11.0 / 17.7 GB/s     65536×2048   6.1 / 9.8  →  23.7 / 28.0 GB/s
     *   BF16 4096×4096  12.6–13.6 / 18–22  →  15.7 / 19.2 GB/s     65536×2048  23.1 / 26.4 → 25.5 / 28.7 GB/s
     * Cache-hot (-Dcold=0 -Dshapes=256x4096, weights in L2): F16 0.5–9 (the old decode made C2 give up inlining:
     * NodeCountInliningCutoff, boxed vectors) → 25–34 GB/s, BF16 15 → 37 GB/s.
     * Open: at K ≥ 4096 (rows of 8 KB) both formats reach only ~11 GB/s with one thread from DRAM, against
     * ~20 at K ≤ 2048, though not when cache-hot; splitting K into 2048-element segments (x stays in L1) was
     * slower (7 GB/s), a two-row kernel sharing the x loads broke F16 inlining and did not help BF16.
     */

    private static final int F16_ABS = 0x0fffffff;       // decoded: everything but the sign
    private static final int F16_INF = 0x1f << 23;        // decoded half exponent 31 (infinity, NaN)

    /** Low halves of {@code v} (even elements) as floats, times 2^-112; infinity and NaN not handled. */
    final FloatVector f16Lo(IntVector v) {
        return v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(0x8fffffff).reinterpretAsFloats();
    }

    /** High halves of {@code v} (odd elements) as floats, times 2^-112; infinity and NaN not handled. */
    final FloatVector f16Hi(IntVector v) {
        return v.lanewise(VectorOperators.ASHR, 3).and(0x8fffe000).reinterpretAsFloats();
    }

    /** Lanewise min with a short that is 0 iff that half of {@code v} is infinite or NaN. */
    private ShortVector f16Check(ShortVector min, IntVector v) {
        return min.min(v.not().and(0x7c007c00).reinterpretAsShorts());
    }

    /**
     * {@link #f16Lo} / {@link #f16Hi} result made exact for every half: a decoded exponent of 31 becomes 255, and
     * NaNs get the quiet bit, as {@link Float#float16ToFloat} and x86's {@code vcvtph2ps} do (then infinity and
     * NaN are themselves, not times 2^-112).
     */
    final FloatVector f16Fix(FloatVector decoded) {
        IntVector v = decoded.reinterpretAsInts(), abs = v.and(F16_ABS);
        return v.lanewise(VectorOperators.OR, 0x7f800000, abs.compare(VectorOperators.GE, F16_INF))
                .lanewise(VectorOperators.OR, 0x00400000, abs.compare(VectorOperators.GT, F16_INF))
                .reinterpretAsFloats();
    }

    /**
     * Σ w[j]·x[j] over {@code len} F16 weights at byte {@code off}; {@code x} (from {@code xo}) in the pair layout
     * and times 2^112 (see above).
     */
    final float dotF16(MemorySegment w, long off, float[] x, int xo, int len) {
        VectorSpecies<Float> F = hf();
        VectorSpecies<Integer> I = hi();
        int L = F.length(), G = 2 * L;
        FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
        ShortVector c0 = ShortVector.broadcast(hs(), (short) 0x7c00), c1 = c0;
        int j = 0;
        for (; j + 2 * G <= len; j += 2 * G) {
            long o = off + 2L * j;
            IntVector a = IntVector.fromMemorySegment(I, w, o, LE), b = IntVector.fromMemorySegment(I, w, o + 2L * G, LE);
            c0 = f16Check(c0, a);
            c1 = f16Check(c1, b);
            s0 = f16Lo(a).fma(FloatVector.fromArray(F, x, xo + j), s0);
            s1 = f16Hi(a).fma(FloatVector.fromArray(F, x, xo + j + L), s1);
            s2 = f16Lo(b).fma(FloatVector.fromArray(F, x, xo + j + G), s2);
            s3 = f16Hi(b).fma(FloatVector.fromArray(F, x, xo + j + G + L), s3);
        }
        if (j + G <= len) {
            IntVector a = IntVector.fromMemorySegment(I, w, off + 2L * j, LE);
            c0 = f16Check(c0, a);
            s0 = f16Lo(a).fma(FloatVector.fromArray(F, x, xo + j), s0);
            s1 = f16Hi(a).fma(FloatVector.fromArray(F, x, xo + j + L), s1);
            j += G;
        }
        if (c0.min(c1).reduceLanes(VectorOperators.MIN) == 0) return dotF16Exact(w, off, x, xo, len);
        float sum = hsum(s0.add(s1).add(s2.add(s3)));
        return sum + dotF16Tail(w, off, x, xo, j, len);
    }

    /** {@link #dotF16} for a row with an infinite or NaN weight: the exact decode throughout (slow, rare). */
    private float dotF16Exact(MemorySegment w, long off, float[] x, int xo, int len) {
        VectorSpecies<Float> F = hf();
        int L = F.length(), G = 2 * L;
        FloatVector s0 = FloatVector.zero(F), s1 = s0;
        int j = 0;
        for (; j + G <= len; j += G) {
            IntVector a = IntVector.fromMemorySegment(hi(), w, off + 2L * j, LE);
            s0 = f16Fix(f16Lo(a)).fma(FloatVector.fromArray(F, x, xo + j), s0);
            s1 = f16Fix(f16Hi(a)).fma(FloatVector.fromArray(F, x, xo + j + L), s1);
        }
        return hsum(s0.add(s1)) + dotF16Tail(w, off, x, xo, j, len);
    }

    /** Elements {@code [from, len)} of {@link #dotF16}, in order (x there is times 2^112 too: undone exactly). */
    private static float dotF16Tail(MemorySegment w, long off, float[] x, int xo, int from, int len) {
        float sum = 0f;
        for (int j = from; j < len; j++) sum += Float.float16ToFloat(w.get(SHORT_LE, off + 2L * j)) * (x[xo + j] * 0x1p-112f);
        return sum;
    }

    /**
     * Σ w[j]·x[j] over {@code len} BF16 weights at byte {@code off}; {@code x} (from {@code xo}) in the pair
     * layout. Decode: a BF16 is the upper half of a float, so the low halves are {@code v << 16} and the high
     * halves {@code v & 0xffff0000}: one op per float vector.
     */
    final float dotBf16(MemorySegment w, long off, float[] x, int xo, int len) {
        VectorSpecies<Float> F = hf();
        VectorSpecies<Integer> I = hi();
        int L = F.length(), G = 2 * L;
        FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
        int j = 0;
        for (; j + 2 * G <= len; j += 2 * G) {
            long o = off + 2L * j;
            IntVector a = IntVector.fromMemorySegment(I, w, o, LE), b = IntVector.fromMemorySegment(I, w, o + 2L * G, LE);
            s0 = bf16Lo(a).fma(FloatVector.fromArray(F, x, xo + j), s0);
            s1 = bf16Hi(a).fma(FloatVector.fromArray(F, x, xo + j + L), s1);
            s2 = bf16Lo(b).fma(FloatVector.fromArray(F, x, xo + j + G), s2);
            s3 = bf16Hi(b).fma(FloatVector.fromArray(F, x, xo + j + G + L), s3);
        }
        if (j + G <= len) {
            IntVector a = IntVector.fromMemorySegment(I, w, off + 2L * j, LE);
            s0 = bf16Lo(a).fma(FloatVector.fromArray(F, x, xo + j), s0);
            s1 = bf16Hi(a).fma(FloatVector.fromArray(F, x, xo + j + L), s1);
            j += G;
        }
        float sum = hsum(s0.add(s1).add(s2.add(s3)));
        return sum + ScalarQuantMatmul.dotBf16(w, off + 2L * j, x, xo + j, len - j);
    }

    private static FloatVector bf16Lo(IntVector v) {
        return v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    private static FloatVector bf16Hi(IntVector v) {
        return v.and(0xffff0000).reinterpretAsFloats();
    }

    // ------------------------------------------------------------------------------------------- widths

    static SimdDots forBits(int bits) {
        return switch (bits) {
            case 512 -> new W512();
            case 256 -> new W256();
            case 128 -> new W128();
            default -> throw new IllegalArgumentException("no quantized kernels for " + bits + "-bit vectors");
        };
    }

    static final class W512 extends SimdDots {
        private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
        private static final VectorSpecies<Integer> I = IntVector.SPECIES_512;
        private static final VectorSpecies<Short> S = ShortVector.SPECIES_512;
        private static final VectorSpecies<Short> SH = ShortVector.SPECIES_256;
        private static final VectorSpecies<Byte> BH = ByteVector.SPECIES_256;
        private static final VectorSpecies<Float> HF = FloatVector.SPECIES_256;
        private static final VectorSpecies<Integer> HI = IntVector.SPECIES_256;
        private static final VectorSpecies<Short> HS = ShortVector.SPECIES_256;
        @Override VectorSpecies<Float> f() { return F; }
        @Override VectorSpecies<Integer> i() { return I; }
        @Override VectorSpecies<Short> s() { return S; }
        @Override VectorSpecies<Short> sHalf() { return SH; }
        @Override VectorSpecies<Byte> bHalf() { return BH; }
        @Override boolean quantized() { return true; }
        @Override VectorSpecies<Float> hf() { return HF; }
        @Override VectorSpecies<Integer> hi() { return HI; }
        @Override VectorSpecies<Short> hs() { return HS; }
    }

    static final class W256 extends SimdDots {
        private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
        private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
        private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
        private static final VectorSpecies<Short> SH = ShortVector.SPECIES_128;
        private static final VectorSpecies<Byte> BH = ByteVector.SPECIES_128;
        @Override VectorSpecies<Float> f() { return F; }
        @Override VectorSpecies<Integer> i() { return I; }
        @Override VectorSpecies<Short> s() { return S; }
        @Override VectorSpecies<Short> sHalf() { return SH; }
        @Override VectorSpecies<Byte> bHalf() { return BH; }
        @Override boolean quantized() { return true; }
        @Override VectorSpecies<Float> hf() { return F; }
        @Override VectorSpecies<Integer> hi() { return I; }
        @Override VectorSpecies<Short> hs() { return S; }
    }

    static final class W128 extends SimdDots {
        private static final VectorSpecies<Float> F = FloatVector.SPECIES_128;
        private static final VectorSpecies<Integer> I = IntVector.SPECIES_128;
        private static final VectorSpecies<Short> S = ShortVector.SPECIES_128;
        private static final VectorSpecies<Short> SH = ShortVector.SPECIES_64;
        private static final VectorSpecies<Byte> BH = ByteVector.SPECIES_64;
        @Override VectorSpecies<Float> f() { return F; }
        @Override VectorSpecies<Integer> i() { return I; }
        @Override VectorSpecies<Short> s() { return S; }
        @Override VectorSpecies<Short> sHalf() { return SH; }
        @Override VectorSpecies<Byte> bHalf() { return BH; }
        @Override boolean quantized() { return false; }
        @Override VectorSpecies<Float> hf() { return F; }
        @Override VectorSpecies<Integer> hi() { return I; }
        @Override VectorSpecies<Short> hs() { return S; }
    }
}
