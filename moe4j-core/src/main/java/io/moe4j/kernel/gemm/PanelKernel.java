package io.moe4j.kernel.gemm;

import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/**
 * Public access to {@link SimdGemm}'s register-blocked microkernel and its B-panel transpose, for callers that
 * produce packed panels themselves — {@link io.moe4j.kernel.quant.PanelGemm} dequantizes weights straight into
 * the packed-B layout instead of reading F32 matrices.
 *
 * <p>An added entry point only: the kernels and packing routines are the ones SimdGemm runs, unchanged, so a
 * product computed through here rounds exactly like the same tile computed by SimdGemm.
 *
 * <p>Packed layouts (see {@link GemmKernel}): A panel {@code a[ai + p·MR + r] = op(A)[row r][p]}; B panel
 * {@code b[bi + p·NR + j] = op(B)[p][column j]}, both zero-padded to whole MR / NR tiles.
 */
public final class PanelKernel {
    private final GemmKernel kernel;

    private PanelKernel(GemmKernel kernel) {
        this.kernel = kernel;
    }

    /** The microkernel for a vector width (128, 256 or 512 bits). */
    public static PanelKernel of(VectorSpecies<Float> species) {
        GemmJit.ensureC2Only(); // same JIT trap as SimdGemm's kernels: see GemmJit
        return new PanelKernel(GemmKernel.of(species));
    }

    /** Rows of a C tile (activation rows per A panel). */
    public int mr() { return kernel.mr; }

    /** Columns of a C tile (output columns per B panel, a whole number of vectors). */
    public int nr() { return kernel.nr; }

    /**
     * {@code C[0..MR)[0..NR) = (add ? C : 0) + Σ_p a[p]ᵀ·b[p]} over {@code kc} steps, in order of p.
     *
     * @param cOff byte offset of the tile's first element in {@code c} (native byte order)
     * @param ldc  byte distance between rows of C
     */
    public void multiply(int kc, float[] a, int ai, float[] b, int bi, MemorySegment c, long cOff, long ldc,
                         boolean add) {
        kernel.multiply(kc, a, ai, b, bi, c, cOff, ldc, add);
    }

    /**
     * Packs one full B panel from NR rows stored along K ({@code src} floats, row stride {@code ld}):
     * {@code dst[d + p·NR + j] = src[srcIndex + j·ld + p]} for p < kc, j < NR.
     */
    public void packTransposed(MemorySegment src, long srcIndex, long ld, int kc, float[] dst, int d) {
        kernel.packTransposed(src, srcIndex, ld, kc, dst, d);
    }

    @Override
    public String toString() { return kernel.toString(); }
}
