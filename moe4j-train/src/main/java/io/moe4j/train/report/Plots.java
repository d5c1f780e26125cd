package io.moe4j.train.report;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The report's PNG charts, drawn with XChart in one house style (white background, readable fonts, a fixed
 * colour cycle so "layer 0" has the same colour in every chart of a report).
 */
public final class Plots {
    static {
        // charts are rendered off-screen; without this a server without a display would fail on the first font
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
    }

    static final int WIDTH = 900, HEIGHT = 500;
    static final Color[] COLORS = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0xff7f0e),
            new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2), new Color(0x17becf), new Color(0x7f7f7f)};

    private Plots() {}

    /** One named line of a chart. {@code markers}: draw points (sparse data such as validation) instead of a line. */
    public record Line(String name, double[] x, double[] y, boolean markers) {}

    /** A line chart; an empty {@code lines} list draws nothing and returns false. */
    public static boolean lines(Path png, String title, String xTitle, String yTitle, List<Line> lines, boolean logY) {
        List<Line> drawn = new ArrayList<>();
        for (Line l : lines) if (l.x().length > 0) drawn.add(l);
        if (drawn.isEmpty()) return false;
        XYChart c = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle(xTitle).yAxisTitle(yTitle).build();
        style(c.getStyler());
        c.getStyler().setYAxisLogarithmic(logY && allPositive(drawn));
        // a legend inside the plot hides lines once there are several; past a dozen it is unreadable anyway
        c.getStyler().setLegendVisible(drawn.size() > 1 && drawn.size() <= 12);
        if (drawn.size() > 3) c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        c.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        int i = 0;
        for (Line l : drawn) {
            XYSeries s = c.addSeries(l.name(), l.x(), l.y());
            Color col = COLORS[i++ % COLORS.length];
            s.setLineColor(col);
            s.setMarkerColor(col);
            if (l.markers()) {
                s.setMarker(SeriesMarkers.CIRCLE);
                s.setLineStyle(new BasicStroke(1.5f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND, 1f, new float[]{4f, 4f}, 0f));
            } else {
                s.setMarker(SeriesMarkers.NONE);
                s.setLineStyle(new BasicStroke(1.8f));
            }
        }
        save(c, png);
        return true;
    }

    /**
     * A heat map: {@code values[x][y]}, x labelled by {@code xLabels} (e.g. step ranges), y by {@code yLabels}
     * (experts). Colours run from white (0) to dark blue ({@code max}).
     */
    public static void heatMap(Path png, String title, String xTitle, String yTitle, List<String> xLabels,
                               List<String> yLabels, double[][] values, double max, String valuePattern) {
        HeatMapChart c = new HeatMapChartBuilder().width(WIDTH).height(Math.max(340, 120 + 34 * yLabels.size()))
                .title(title).xAxisTitle(xTitle).yAxisTitle(yTitle).build();
        style(c.getStyler());
        c.getStyler().setLegendVisible(true);
        c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        c.getStyler().setRangeColors(new Color[]{new Color(0xf7fbff), new Color(0x6baed6), new Color(0x08306b)});
        c.getStyler().setMin(0);
        c.getStyler().setMax(max);
        c.getStyler().setShowValue(xLabels.size() <= 12);
        c.getStyler().setHeatMapValueDecimalPattern(valuePattern);
        c.getStyler().setValueFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        c.getStyler().setXAxisLabelRotation(xLabels.size() > 10 ? 45 : 0);
        List<Number[]> data = new ArrayList<>();
        for (int x = 0; x < values.length; x++) {
            for (int y = 0; y < values[x].length; y++) data.add(new Number[]{x, y, values[x][y]});
        }
        c.addSeries("load", xLabels, yLabels, data);
        save(c, png);
    }

    private static void style(Styler s) {
        s.setChartBackgroundColor(Color.WHITE);
        s.setPlotBackgroundColor(Color.WHITE);
        s.setPlotBorderVisible(false);
        s.setChartTitleFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
        s.setLegendFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        s.setLegendBorderColor(new Color(0xdddddd));
        if (!(s instanceof org.knowm.xchart.style.HeatMapStyler)) s.setLegendPosition(Styler.LegendPosition.InsideNE);
        s.setAntiAlias(true);
        if (s instanceof org.knowm.xchart.style.AxesChartStyler a) {
            a.setAxisTitleFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
            a.setAxisTickLabelsFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
            a.setPlotGridLinesColor(new Color(0xe6e6e6));
        }
    }

    private static boolean allPositive(List<Line> lines) {
        for (Line l : lines) for (double v : l.y()) if (!(v > 0)) return false;
        return true;
    }

    private static void save(org.knowm.xchart.internal.chartpart.Chart<?, ?> c, Path png) {
        try {
            BitmapEncoder.saveBitmap(c, png.toString(), BitmapEncoder.BitmapFormat.PNG);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write chart " + png, e);
        }
    }
}
