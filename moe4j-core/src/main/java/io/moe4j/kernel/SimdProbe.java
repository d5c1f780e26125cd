package io.moe4j.kernel;

/**
 * Asks the Vector API for the preferred vector width without linking it into classes that must load without the
 * incubator module.
 */
final class SimdProbe {
    private SimdProbe() {}

    static int preferredBits() {
        try {
            Object species = Class.forName("jdk.incubator.vector.FloatVector").getField("SPECIES_PREFERRED").get(null);
            return (int) Class.forName("jdk.incubator.vector.VectorSpecies").getMethod("vectorBitSize").invoke(species);
        } catch (ReflectiveOperationException | LinkageError e) {
            return 0;
        }
    }
}
