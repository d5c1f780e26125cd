package io.moe4j.train.ui;

import io.moe4j.train.TrainConfig;
import io.moe4j.train.TrainResult;
import io.moe4j.train.report.LayerRecord;
import io.moe4j.train.report.StepRecord;
import io.moe4j.train.report.ValRecord;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class ProgressBarTest {
    private long now;

    private static StepRecord step(int i) {
        return new StepRecord(i, 3.25, 0.0125, 1e-3, 0.5, 12_345, 1000L * (i + 1),
                List.of(new LayerRecord(0, new int[]{3, 1}, 1.5, 0.5, 0, 0.6, 2, new float[0])));
    }

    @Test
    void terminalRedrawsOneLineInPlaceWithEta() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        ProgressBar p = new ProgressBar(new PrintStream(buf, true, StandardCharsets.UTF_8), true, 10, () -> now);
        p.onStart(TrainConfig.load("tiny", null, List.of()), 0, 100);
        now = 10_000_000_000L; // 10 s for 25 steps ⇒ 30 s for the remaining 75
        p.onStep(step(24), 100);
        String out = buf.toString(StandardCharsets.UTF_8);
        assertThat(out).contains("\r\033[K").contains("tiny  [█████ ").contains(" 25/100  25%").contains("12.3k tok/s")
                .contains("loss 3.2500").contains("aux 0.0125").contains("imb 1.50").contains("ETA 0:30");
        p.onValidation(new ValRecord(24, 3.0, 1.2));
        assertThat(buf.toString(StandardCharsets.UTF_8)).endsWith("validation after step 25: loss 3.0000, 1.2000 bits/byte\n");
    }

    @Test
    void notATerminalPrintsEveryNthStepAsPlainLines() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        ProgressBar p = new ProgressBar(new PrintStream(buf, true, StandardCharsets.UTF_8), false, 10, () -> now);
        p.onStart(TrainConfig.load("tiny", null, List.of()), 0, 25);
        for (int i = 0; i < 25; i++) p.onStep(step(i), 25);
        p.onEnd();
        String[] lines = buf.toString(StandardCharsets.UTF_8).split("\n");
        assertThat(lines).hasSize(1 + 4); // header, steps 1, 10, 20, 25
        assertThat(lines[1]).contains(" 1/25");
        assertThat(lines[4]).contains("25/25 100%");
        assertThat(buf.toString(StandardCharsets.UTF_8)).doesNotContain("\r").doesNotContain("█");
    }

    @Test
    void formatsBarsRatesAndDurations() {
        assertThat(ProgressBar.bar(0)).hasSize(20).isBlank();
        assertThat(ProgressBar.bar(1)).isEqualTo("█".repeat(20));
        assertThat(ProgressBar.bar(0.53)).hasSize(20).startsWith("██████████▌");
        assertThat(ProgressBar.rate(950)).isEqualTo("950");
        assertThat(ProgressBar.rate(2_500_000)).isEqualTo("2.50M");
        assertThat(ProgressBar.duration(3725)).isEqualTo("1:02:05");
        assertThat(ProgressBar.duration(Double.NaN)).isEqualTo("–");
    }

    @Test
    void summaryTableAlignsAndRendersMarkdown() {
        TrainResult a = new TrainResult("moe", 300, 2.5, 2.61234, 1.1, 12345.6, 60, 1_234_567, 456_789, 1.2, 0.01, 2, Path.of("x"), null);
        TrainResult b = new TrainResult("moe-dense", 300, 2.7, Double.NaN, Double.NaN, 20000, 50, 400_000, 400_000, 1, 0, 0, Path.of("y"), null);
        String t = SummaryTable.plain(List.of(a, b));
        String[] lines = t.split("\n");
        assertThat(lines).hasSize(4);
        assertThat(lines[0].length()).isEqualTo(lines[2].length()).isEqualTo(lines[3].length());
        assertThat(lines[2]).contains("1.23M").contains("456.8k").contains("2.6123").contains("12,346").contains("1.00%");
        assertThat(lines[3]).contains("–");
        String md = SummaryTable.markdown(List.of(a));
        assertThat(md).startsWith("| run | steps |").contains("|---|---:|").contains("| moe | 300 |");
    }
}
