package io.moe4j.train.report;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class RunLogTest {

    private static StepRecord step(int i, double loss) { return new StepRecord(i, loss, 0, 1e-3, 1, 100, i * 10L, List.of()); }

    @Test
    void reopeningAtACheckpointDropsLaterEntriesAndCutLines(@TempDir Path dir) throws Exception {
        try (RunLog log = new RunLog(dir, 0)) {
            for (int i = 0; i < 10; i++) log.step(step(i, 10 - i));
            log.validation(new ValRecord(4, 2.0, 1.0));
            log.validation(new ValRecord(9, 1.5, 0.8));
            log.event(7, "something happened");
        }
        // a crash mid-line
        Files.writeString(dir.resolve(RunLog.FILE), "{\"type\":\"step\",\"st", StandardCharsets.UTF_8, StandardOpenOption.APPEND);
        try (RunLog log = new RunLog(dir, 6)) {
            log.step(step(6, 99));
        }
        RunLog.Contents c = RunLog.read(dir);
        assertThat(c.steps()).extracting(StepRecord::step).containsExactly(0, 1, 2, 3, 4, 5, 6);
        assertThat(c.steps().get(6).loss()).isEqualTo(99);
        assertThat(c.validations()).extracting(ValRecord::step).containsExactly(4);
        assertThat(c.events()).containsExactly("step 7: something happened");
    }
}
