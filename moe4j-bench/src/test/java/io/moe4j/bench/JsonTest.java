package io.moe4j.bench;

import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

class JsonTest {

    @Test
    void writesNestedValuesWithEscapes() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("s", "a\"b\\c\nd\u0001");
        m.put("i", 42);
        m.put("d", 0.05);
        m.put("small", 1.5e-7);
        m.put("nan", Double.NaN);
        m.put("list", List.of(1, true));
        m.put("empty", List.of());
        m.put("null", null);
        String json = Json.write(m).replaceAll("\\s+", "");
        assertThat(json).isEqualTo("{\"s\":\"a\\\"b\\\\c\\nd\\u0001\",\"i\":42,\"d\":0.05,\"small\":1.5e-07,"
                + "\"nan\":null,\"list\":[1,true],\"empty\":[],\"null\":null}");
    }

    /** Values that round to an integer at 6 significant digits used to come out as "183." (not JSON). */
    @Test
    void numbersThatRoundToIntegersAreValidJson() throws Exception {
        for (double d : new double[]{183.0000004, 135.0000001, 99.9999999, 1.0000001e20, 2.5, -7.0000004}) {
            String js = Json.write(Map.of("v", d));
            double back = new com.fasterxml.jackson.databind.ObjectMapper().readTree(js).get("v").asDouble();
            org.assertj.core.api.Assertions.assertThat(back).as(js).isCloseTo(d, org.assertj.core.api.Assertions.within(Math.abs(d) * 1e-5));
        }
    }
}
