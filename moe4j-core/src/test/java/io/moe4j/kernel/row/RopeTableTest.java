package io.moe4j.kernel.row;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.data.Offset.offset;

class RopeTableTest {

    @Test
    void anglesFollowTheFormula() {
        RopeTable t = new RopeTable(4096, 128, 10000);
        int half = 64;
        for (int pos : new int[]{0, 1, 17, 4095}) {
            for (int i = 0; i < half; i++) {
                double angle = pos * Math.pow(10000, -2.0 * i / 128);
                assertThat((double) t.cos()[t.offset(pos) + i]).isCloseTo(Math.cos(angle), offset(1e-7));
                assertThat((double) t.sin()[t.offset(pos) + i]).isCloseTo(Math.sin(angle), offset(1e-7));
            }
        }
        assertThat(t.offset(3)).isEqualTo(3 * half);
        assertThat(t.cos()).hasSize(4096 * half);
        assertThat(t.cos()[t.offset(0)]).isEqualTo(1f); // position 0 is the identity
        assertThat(t.sin()[t.offset(0) + 5]).isZero();
    }

    @Test
    void frequencyFactorsDivideTheFrequency() {
        float[] f = {1, 2, 4, 8};
        RopeTable scaled = new RopeTable(64, 8, 10000, f), plain = new RopeTable(64, 8, 10000);
        for (int i = 0; i < 4; i++) {
            double angle = 40 * Math.pow(10000, -2.0 * i / 8) / f[i];
            assertThat((double) scaled.sin()[scaled.offset(40) + i]).isCloseTo(Math.sin(angle), offset(1e-7));
        }
        // linear scaling by 2: position 2p sees the angles of position p (exact: scaling by 2 is exact in binary)
        RopeTable linear = RopeTable.linear(64, 8, 10000, 2f);
        for (int i = 0; i < 4; i++) {
            assertThat(linear.cos()[linear.offset(2 * 13) + i]).isEqualTo(plain.cos()[plain.offset(13) + i]);
            assertThat(linear.sin()[linear.offset(2 * 13) + i]).isEqualTo(plain.sin()[plain.offset(13) + i]);
        }
    }

    @Test
    void rejectsBadArguments() {
        assertThatThrownBy(() -> new RopeTable(8, 7, 10000)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("even");
        assertThatThrownBy(() -> new RopeTable(-1, 8, 10000)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new RopeTable(8, 8, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new RopeTable(8, 8, 10000, new float[3])).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("rotDim/2");
        assertThatThrownBy(() -> new RopeTable(8, 8, 10000, new float[]{1, 0, 1, 1})).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new RopeTable(8, 8, 10000).offset(8)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("position 8");
    }
}
