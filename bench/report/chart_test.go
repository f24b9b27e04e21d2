package report

import (
	"flag"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var chartOut = flag.String("chart", "", "also write the example chart of TestChartPNG to this `file`, to look at")

// exampleChart is a chart like the native scenario's: three systems, four
// groups, scp without a figure in one of them.
func exampleChart() *Chart {
	nan := math.NaN()
	return &Chart{
		Title:  "Throughput of a 1 GiB file over LNP/1, against scp",
		YLabel: "MB/s",
		Groups: []string{"upload, TLS", "download, TLS", "upload, plaintext", "download, plaintext"},
		Series: []Series{
			{Name: "larder", Median: []float64{356, 412, 618, 702}, Min: []float64{331, 398, 590, 655}, Max: []float64{371, 430, 640, 731}},
			{Name: "baseline", Median: []float64{402, 455, 688, 790}, Min: []float64{380, 440, 650, 770}, Max: []float64{410, 470, 700, 812}},
			{Name: "scp", Median: []float64{231, 247, nan, 255}, Min: []float64{220, 240, nan, 251}, Max: []float64{239, 260, nan, 266}},
		},
		Lines: []Line{{Label: "aim 500 MB/s", Y: 500}},
		Note:  "2 cores, 24 GiB; median of 5 rounds; cd bench && go run . native -rounds 5",
	}
}

func TestChartPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chart.png")
	if *chartOut != "" {
		path = *chartOut
	}
	if err := exampleChart().WritePNG(path); err != nil {
		t.Fatalf("WritePNG: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("png.Decode: %v", err)
	}
	if got := img.Bounds().Size(); got != (image.Point{X: chartWidth, Y: chartHeight}) {
		t.Errorf("image size %v, want %dx%d", got, chartWidth, chartHeight)
	}
	// Not blank: the picture has white, ink, and each series' colour.
	seen := map[[3]uint32]bool{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
		}
	}
	if len(seen) < 10 {
		t.Errorf("%d distinct colours in the image, want a drawn chart", len(seen))
	}
	for i := range exampleChart().Series {
		r, g, b, _ := chartColors[i].RGBA()
		if !seen[[3]uint32{r >> 8, g >> 8, b >> 8}] {
			t.Errorf("no pixel of series %d's colour %v", i, chartColors[i])
		}
	}
}

func TestChartErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Chart)
		want   string
	}{
		{"no groups", func(c *Chart) { c.Groups = nil }, "no groups"},
		{"no series", func(c *Chart) { c.Series = nil }, "no series"},
		{"medians short", func(c *Chart) { c.Series[1].Median = c.Series[1].Median[:3] }, "3 medians for 4 groups"},
		{"maxima long", func(c *Chart) { c.Series[0].Max = append(c.Series[0].Max, 1) }, "5 maxima for 4 groups"},
		{"negative", func(c *Chart) { c.Series[2].Median[0] = -1 }, "cannot be drawn from 0"},
		{"infinite", func(c *Chart) { c.Series[2].Max[1] = math.Inf(1) }, "cannot be drawn from 0"},
		{"median above max", func(c *Chart) { c.Series[0].Median[3] = 800 }, "outside min"},
		{"line", func(c *Chart) { c.Lines[0].Y = math.NaN() }, `line "aim 500 MB/s"`},
		{"too many series", func(c *Chart) {
			for len(c.Series) <= len(chartColors) {
				c.Series = append(c.Series, c.Series[0])
			}
		}, "at most 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := exampleChart()
			tt.change(c)
			path := filepath.Join(t.TempDir(), "chart.png")
			err := c.WritePNG(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("WritePNG: got error %v, want one with %q", err, tt.want)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("WritePNG wrote %s despite the error", path)
			}
		})
	}
}

// TestChartSparse draws the edge cases that must not panic: no error bars,
// a group without any figure, all figures zero, a single group.
func TestChartSparse(t *testing.T) {
	nan := math.NaN()
	for name, c := range map[string]*Chart{
		"no whiskers":  {Groups: []string{"a", "b"}, Series: []Series{{Name: "x", Median: []float64{1, 2}}}},
		"empty group":  {Groups: []string{"a", "b"}, Series: []Series{{Name: "x", Median: []float64{nan, 2}, Min: []float64{nan, 1}, Max: []float64{nan, 3}}}},
		"all NaN":      {Groups: []string{"a"}, Series: []Series{{Name: "x", Median: []float64{nan}}}},
		"zeros":        {Groups: []string{"a", "b"}, Series: []Series{{Name: "x", Median: []float64{0, 0}}}},
		"small values": {Groups: []string{"a"}, Series: []Series{{Name: "x", Median: []float64{0.0042}}}, Lines: []Line{{"ceiling", 0.005}}},
	} {
		t.Run(name, func(t *testing.T) {
			if err := c.WritePNG(filepath.Join(t.TempDir(), "chart.png")); err != nil {
				t.Fatalf("WritePNG: %v", err)
			}
		})
	}
}
