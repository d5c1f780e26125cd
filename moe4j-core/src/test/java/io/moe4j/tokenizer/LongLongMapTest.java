package io.moe4j.tokenizer;

import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The primitive map against java.util.HashMap over random operations, through several resizes. */
class LongLongMapTest {
    @Test
    void behavesLikeHashMap() {
        Random r = new Random(5);
        LongLongMap m = new LongLongMap(4);
        Map<Long, Long> ref = new HashMap<>();
        for (int i = 0; i < 200_000; i++) {
            // clustered keys (small ids in both halves), as BPE pair keys are
            long k = (long) r.nextInt(300) << 32 | r.nextInt(300);
            switch (r.nextInt(4)) {
                case 0 -> assertThat(m.putIfAbsent(k, i)).isEqualTo(ref.putIfAbsent(k, (long) i) == null);
                case 1 -> {
                    m.put(k, -i);
                    ref.put(k, (long) -i);
                }
                case 2 -> assertThat(m.add(k, 3)).isEqualTo(ref.merge(k, 3L, Long::sum));
                default -> assertThat(m.get(k, Long.MIN_VALUE)).isEqualTo(ref.getOrDefault(k, Long.MIN_VALUE));
            }
        }
        assertThat(m.size()).isEqualTo(ref.size());
        Map<Long, Long> seen = new HashMap<>();
        m.forEach((k, v) -> {
            seen.put(k, v);
            return 0;
        });
        assertThat(seen).isEqualTo(ref);
        assertThatThrownBy(() -> m.put(-5, 1)).isInstanceOf(IllegalArgumentException.class);
    }
}
