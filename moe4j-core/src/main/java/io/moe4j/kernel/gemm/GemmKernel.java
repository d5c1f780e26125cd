package io.moe4j.kernel.gemm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

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
     * Packs one full B panel whose NR columns are contiguous in memory (op(B) = B, row stride {@code ld}):
     * {@code dst[d + p*NR + j] = src[srcIndex + p*ld + j]} for p < kc, j < NR. Vector copies.
     */
    abstract void packRuns(MemorySegment src, long srcIndex, long ld, int kc, float[] dst, int d);

    /**
     * Packs one full B panel stored transposed (op(B) = Bᵀ: NR rows of B, each contiguous along K):
     * {@code dst[d + p*NR + j] = src[srcIndex + j*ld + p]} for p < kc, j < NR. In-register block transposes.
     */
    abstract void packTransposed(MemorySegment src, long srcIndex, long ld, int kc, float[] dst, int d);

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
