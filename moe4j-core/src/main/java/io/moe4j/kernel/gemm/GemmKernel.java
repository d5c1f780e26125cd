package io.moe4j.kernel.gemm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The register-blocked microkernel of {@link SimdGemm}: one MR×NR tile of C from an MR×kc panel of packed A and a
 * kc×NR panel of packed B.
 *
 * <p>One subclass per vector width, because C2 compiles a Vector API call to a single instruction only when the
 * species is a compile-time constant ({@code static final}); a species held in an instance field would leave every
 * {@code fma} as a slow library call. The subclasses are deliberately unrolled by hand: the accumulators must be
 * named locals for C2 to keep them in registers.
 *
 * <p>Packed layouts (produced by {@link SimdGemm}): A panel {@code a[ai + p*MR + r] = op(A)[row r][p]}; B panel
 * {@code b[bi + p*NR + j] = op(B)[p][column j]}. Both are zero-padded, so the kernel always computes a full tile.
 */
abstract class GemmKernel {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /** Rows of the C tile (broadcast values of A per step). */
    final int mr;
    /** Columns of the C tile (a whole number of vectors). */
    final int nr;
    final VectorSpecies<Float> species;

    GemmKernel(int mr, int nr, VectorSpecies<Float> species) {
        this.mr = mr;
        this.nr = nr;
        this.species = species;
    }

    /**
     * {@code C[0..MR)[0..NR) = (add ? C : 0) + Σ_p a[p]ᵀ·b[p]} over {@code kc} steps, summing p in order.
     *
     * @param cOff byte offset of the tile's first element in {@code c}
     * @param ldc  byte distance between rows of C
     */
    abstract void multiply(int kc, float[] a, int ai, float[] b, int bi, MemorySegment c, long cOff, long ldc,
                           boolean add);

    /**
     * Packs {@code panels} adjacent full B panels whose columns are contiguous in memory (op(B) = B, row stride
     * {@code ld}), one row of storage at a time: {@code dst[d + jp*NR*kc + p*NR + j] = src[srcIndex + p*ld + jp*NR + j]}
     * for jp < panels, p < kc, j < NR. Vector copies.
     */
    abstract void packRuns(MemorySegment src, long srcIndex, long ld, int kc, int panels, float[] dst, int d);

    /**
     * Packs one full B panel stored transposed (op(B) = Bᵀ: NR rows of B, each contiguous along K):
     * {@code dst[d + p*NR + j] = src[srcIndex + j*ld + p]} for p < kc, j < NR. In-register block transposes.
     */
    abstract void packTransposed(MemorySegment src, long srcIndex, long ld, int kc, float[] dst, int d);

    /**
     * Packs one full A panel stored row-major (op(A) = A: MR rows, each contiguous along K):
     * {@code dst[d + p*MR + r] = src[srcIndex + r*ld + p]} for p < kb, r < MR. Scalar here; kernels may do better.
     */
    void packARows(MemorySegment src, long srcIndex, long ld, int kb, float[] dst, int d) {
        for (int r = 0; r < mr; r++) {
            long s = srcIndex + r * ld;
            for (int p = 0, o = d + r; p < kb; p++, o += mr) dst[o] = src.getAtIndex(F, s + p);
        }
    }

    /**
     * Packs {@code panels} adjacent full A panels stored transposed (op(A) = Aᵀ: row p of storage holds step p of
     * every panel), one row of storage at a time so that reads are contiguous:
     * {@code dst[d + ip*stride + p*MR + r] = src[srcIndex + p*ld + ip*MR + r]} for ip < panels, p < kb, r < MR.
     */
    void packAColumns(MemorySegment src, long srcIndex, long ld, int kb, int panels, float[] dst, int d, int stride) {
        for (int p = 0; p < kb; p++) {
            long s = srcIndex + p * ld;
            for (int ip = 0; ip < panels; ip++) {
                int o = d + ip * stride + p * mr;
                for (int r = 0; r < mr; r++) dst[o + r] = src.getAtIndex(F, s + ip * mr + r);
            }
        }
    }

    /** The kernel for a vector width: 512, 256 or 128 bits. */
    static GemmKernel of(VectorSpecies<Float> species) {
        if (species.elementType() != float.class) {
            throw new IllegalArgumentException("GEMM needs a float species, got " + species);
        }
        return switch (species.vectorBitSize()) {
            case 512 -> new GemmKernel512();
            case 256 -> new GemmKernel256();
            case 128 -> new GemmKernel128();
            default -> throw new IllegalArgumentException("no GEMM microkernel for " + species.vectorBitSize()
                    + "-bit vectors (supported: 128, 256, 512)");
        };
    }

    /** The preferred species' kernel. */
    static GemmKernel preferred() { return of(FloatVector.SPECIES_PREFERRED); }

    @Override
    public String toString() { return mr + "x" + nr + "@" + species.vectorBitSize(); }
}
