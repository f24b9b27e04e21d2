package report

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Chart is a grouped bar chart of a benchmark's medians, with each bar's
// min–max drawn as an error bar. It is the picture beside a Table in
// docs/BENCHMARKS.md: the same figures, for a reader who would rather look
// than read.
type Chart struct {
	Title  string
	YLabel string   // the unit of the bars, e.g. "MB/s" or "p99 latency (ms)"
	Groups []string // the x axis categories, e.g. "upload, TLS"; a long one wraps at a space
	Series []Series // one per system, e.g. larder, nginx, scp; a bar in each group
	Lines  []Line   // horizontal reference lines, e.g. a target or a ceiling; optional
	Note   string   // one short line under the chart (e.g. machine, date); optional
}

// Series is one system's figures in a Chart, one of each per group. A NaN
// median means the system has no figure in that group: no bar is drawn
// there, and its slot stays empty so that every system keeps its place.
// Min and Max may be nil, or NaN in a group, for a bar without an error bar.
type Series struct {
	Name             string
	Median, Min, Max []float64
}

// Line is a dashed horizontal line across a Chart at Y, labelled in the
// margin at its right, e.g. {"aim 500 MB/s", 500} or {"bare copy ceiling",
// 1840}.
type Line struct {
	Label string
	Y     float64
}

// The image is chartWidth × chartHeight pixels at chartDPI; every other
// length in this file is in points (1/72 inch), 4/3 of a pixel each.
const (
	chartWidth  = 900
	chartHeight = 500
	chartDPI    = 96
)

// chartColors is the Okabe–Ito palette, which readers with any common
// colour-vision deficiency can tell apart, ordered so that the first
// systems get the colours that differ most. Its black is left out: the
// error bars are drawn in near-black on top of the bars.
var chartColors = []color.Color{
	rgb(0x0072B2), // blue
	rgb(0xE69F00), // orange
	rgb(0x009E73), // bluish green
	rgb(0xD55E00), // vermillion
	rgb(0xCC79A7), // reddish purple
	rgb(0x56B4E9), // sky blue
	rgb(0xF0E442), // yellow
}

var (
	chartInk   = rgb(0x222222) // text, error bars, reference lines
	chartMuted = rgb(0x666666) // the note and the legend's key to the error bars
	chartGrid  = rgb(0xE3E3E3)
	chartSans  = font.Font{Typeface: "Liberation", Variant: "Sans"}
	chartBold  = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: xfont.WeightBold}
)

// The bars of a group fill groupSpan of the distance between two groups,
// and each bar barFill of its slot in the group.
const (
	groupSpan = 0.8
	barFill   = 0.88
)

// WritePNG draws c and writes it to path as a PNG image of 900×500
// pixels. It returns an error, and writes nothing, if the series do not
// match the groups or a figure cannot be drawn (negative, infinite, or a
// median outside its min–max).
func (c *Chart) WritePNG(path string) error {
	if err := c.check(); err != nil {
		return err
	}
	w := vg.Length(chartWidth) * vg.Inch / chartDPI
	h := vg.Length(chartHeight) * vg.Inch / chartDPI
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(chartDPI), vgimg.UseBackgroundColor(color.White))
	c.draw(draw.New(img))
	// Encoded in memory first, so that a failure leaves no half-written file.
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&b); err != nil {
		return fmt.Errorf("chart %q: %w", c.Title, err)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// check reports the first thing in c that cannot be drawn.
func (c *Chart) check() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("chart %q: %s", c.Title, fmt.Sprintf(format, args...))
	}
	switch {
	case len(c.Groups) == 0:
		return fail("no groups")
	case len(c.Series) == 0:
		return fail("no series")
	case len(c.Series) > len(chartColors):
		return fail("%d series, at most %d can be told apart", len(c.Series), len(chartColors))
	}
	for _, s := range c.Series {
		if len(s.Median) != len(c.Groups) {
			return fail("series %q has %d medians for %d groups", s.Name, len(s.Median), len(c.Groups))
		}
		if s.Min != nil && len(s.Min) != len(c.Groups) || s.Max != nil && len(s.Max) != len(c.Groups) {
			return fail("series %q has %d minima and %d maxima for %d groups", s.Name, len(s.Min), len(s.Max), len(c.Groups))
		}
		for g, group := range c.Groups {
			med, lo, hi := s.at(g)
			for _, v := range []float64{med, lo, hi} {
				if v < 0 || math.IsInf(v, 0) {
					return fail("series %q, group %q: %v cannot be drawn from 0", s.Name, group, v)
				}
			}
			if lo > med || hi < med {
				return fail("series %q, group %q: median %v outside min %v and max %v", s.Name, group, med, lo, hi)
			}
		}
	}
	for _, l := range c.Lines {
		if l.Y < 0 || math.IsInf(l.Y, 0) || math.IsNaN(l.Y) {
			return fail("line %q at %v cannot be drawn from 0", l.Label, l.Y)
		}
	}
	return nil
}

// at returns the series' median, min and max in group g, each NaN where
// there is none; min and max are NaN where the median is.
func (s *Series) at(g int) (med, lo, hi float64) {
	med, lo, hi = s.Median[g], math.NaN(), math.NaN()
	if math.IsNaN(med) {
		return med, lo, hi
	}
	if s.Min != nil {
		lo = s.Min[g]
	}
	if s.Max != nil {
		hi = s.Max[g]
	}
	return med, lo, hi
}

// draw lays c out on dc: the title, a legend row, the plot with the
// reference lines' labels in a margin at its right, and the note.
func (c *Chart) draw(dc draw.Canvas) {
	const margin = 12
	dc = draw.Crop(dc, margin, -margin, margin, -margin)
	top := dc.Max.Y
	if c.Title != "" {
		st := chartText(chartBold, 15, chartInk)
		st.YAlign = draw.YTop
		dc.FillText(st, vg.Point{X: dc.Min.X, Y: top}, c.Title)
		top -= st.Height(c.Title) + 8
	}
	top -= c.drawLegend(dc, top) + 10
	bottom := dc.Min.Y
	if c.Note != "" {
		st := chartText(chartSans, 9, chartMuted)
		st.YAlign = draw.YBottom
		dc.FillText(st, vg.Point{X: dc.Min.X, Y: bottom}, c.Note)
		bottom += st.Height(c.Note) + 8
	}
	area := dc
	area.Min.Y, area.Max.Y = bottom, top
	// The labels of the lines stand in a margin of their own, where no bar
	// or value label can hide them.
	lineLabel := chartText(chartSans, 10, chartInk)
	lineLabel.YAlign = draw.YCenter
	labels := make([]string, len(c.Lines))
	var labelW vg.Length
	for i, l := range c.Lines {
		labels[i] = wrapLabel(lineLabel, l.Label, 110)
		labelW = max(labelW, lineLabel.Width(labels[i]))
	}
	if labelW > 0 {
		area.Max.X -= labelW + 6
	}
	p := c.plot(area.Max.X - area.Min.X)
	p.Draw(area)
	if labelW > 0 {
		c.drawLineLabels(p.DataCanvas(area), p, lineLabel, labels)
	}
}

// drawLineLabels writes each line's label just right of the data area
// da, level with the line, nudged down where it would overlap the label of
// a higher line.
func (c *Chart) drawLineLabels(da draw.Canvas, p *plot.Plot, st text.Style, labels []string) {
	_, trY := p.Transforms(&da)
	order := make([]int, len(c.Lines))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(c.Lines[b].Y, c.Lines[a].Y) })
	prevY, prevH := vg.Length(math.Inf(1)), vg.Length(0)
	for _, i := range order {
		if labels[i] == "" {
			continue
		}
		h := st.Height(labels[i])
		y := min(trY(c.Lines[i].Y), prevY-(prevH+h)/2-2)
		da.FillText(st, vg.Point{X: da.Max.X + 6, Y: y}, labels[i])
		prevY, prevH = y, h
	}
}

// drawLegend draws a swatch and a name per series from the left at y, in
// rows, and the key to the error bars at the right of the first, and
// returns the legend's height.
func (c *Chart) drawLegend(dc draw.Canvas, y vg.Length) vg.Length {
	st := chartText(chartSans, 11, chartInk)
	st.YAlign = draw.YCenter
	key := chartText(chartSans, 9.5, chartMuted)
	key.XAlign, key.YAlign = draw.XRight, draw.YCenter
	const keyText = "bar: median   whisker: min–max"
	right := dc.Max.X
	if c.hasWhiskers() {
		dc.FillText(key, vg.Point{X: right, Y: y - st.Height("Xg")/2}, keyText)
		right -= key.Width(keyText) + 18
	}
	const swatch, rowGap = 11, 4
	rowH := st.Height("Xg")
	mid, x := y-rowH/2, dc.Min.X
	for i, s := range c.Series {
		w := swatch + 5 + st.Width(s.Name)
		if x > dc.Min.X && x+w > right {
			mid, x = mid-rowH-rowGap, dc.Min.X
		}
		box := vg.Rectangle{
			Min: vg.Point{X: x, Y: mid - swatch/2},
			Max: vg.Point{X: x + swatch, Y: mid + swatch/2},
		}
		dc.SetColor(chartColors[i])
		dc.Fill(box.Path())
		dc.FillText(st, vg.Point{X: x + swatch + 5, Y: mid}, s.Name)
		x += w + 18
	}
	return y - mid + rowH/2
}

// hasWhiskers reports whether any bar has an error bar.
func (c *Chart) hasWhiskers() bool {
	for _, s := range c.Series {
		for g := range c.Groups {
			if _, lo, hi := s.at(g); !math.IsNaN(lo) || !math.IsNaN(hi) {
				return true
			}
		}
	}
	return false
}

// plot returns the axes, grid, bars and lines of c, for an area width wide.
func (c *Chart) plot(width vg.Length) *plot.Plot {
	p := plot.New()
	p.BackgroundColor = nil

	p.X.Min, p.X.Max = -0.5, float64(len(c.Groups))-0.5
	p.X.Padding = 0
	p.X.LineStyle = draw.LineStyle{Color: chartInk, Width: 1}
	p.X.Tick.Length = 0
	p.X.Tick.Label = chartText(chartSans, 11, chartInk)
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XCenter, draw.YTop
	// The y axis and its labels take about 60 points; what is left is
	// shared by the groups, whose names wrap where they would not fit.
	groupW := (width - 60) / vg.Length(len(c.Groups))
	ticks := make([]plot.Tick, len(c.Groups))
	for g, name := range c.Groups {
		ticks[g] = plot.Tick{Value: float64(g), Label: wrapLabel(p.X.Tick.Label, name, 0.85*groupW)}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)

	p.Y.Min = 0
	p.Y.Max, p.Y.Tick.Marker = yTicks(c.maxY())
	p.Y.Padding = 0
	p.Y.LineStyle.Width = 0
	p.Y.Tick.Length = 0
	p.Y.Tick.Label = chartText(chartSans, 10, chartInk)
	p.Y.Tick.Label.XAlign, p.Y.Tick.Label.YAlign = draw.XRight, draw.YCenter
	p.Y.Label.Text = c.YLabel
	p.Y.Label.TextStyle = chartText(chartSans, 11, chartInk)
	p.Y.Label.TextStyle.XAlign, p.Y.Label.TextStyle.YAlign = draw.XCenter, draw.YBottom
	p.Y.Label.Padding = 6

	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	grid.Horizontal = draw.LineStyle{Color: chartGrid, Width: 0.8}
	p.Add(grid, &chartBars{c: c, label: c.valueLabelStyle(groupW)})
	return p
}

// valueLabelStyle returns the style of the labels over the bars when
// groups are groupW apart: level at 10 points, or 8.5 if that is what it
// takes for the widest label to stay over its bar, else upright at 9.
func (c *Chart) valueLabelStyle(groupW vg.Length) text.Style {
	room := 1.1 * groupW * groupSpan / vg.Length(len(c.Series))
	st := chartText(chartSans, 10, chartInk)
	st.XAlign, st.YAlign = draw.XCenter, draw.YBottom
	widest := func() (w vg.Length) {
		for _, s := range c.Series {
			for _, v := range s.Median {
				if !math.IsNaN(v) {
					w = max(w, st.Width(Num(v)))
				}
			}
		}
		return w
	}
	if widest() <= room {
		return st
	}
	st.Font.Size = 8.5
	if widest() <= room {
		return st
	}
	st.Font.Size = 9
	st.Rotation = math.Pi / 2
	st.XAlign, st.YAlign = draw.XLeft, draw.YCenter
	return st
}

// maxY returns the highest figure or line in c, 0 if there is none.
func (c *Chart) maxY() float64 {
	top := 0.0
	for _, s := range c.Series {
		for g := range c.Groups {
			med, _, hi := s.at(g)
			for _, v := range []float64{med, hi} {
				if !math.IsNaN(v) {
					top = max(top, v)
				}
			}
		}
	}
	for _, l := range c.Lines {
		top = max(top, l.Y)
	}
	return top
}

// yTicks returns the top of a y axis from 0 that shows top, and its ticks,
// each a gridline: 4 to 8 intervals of a round step, the one that wastes the
// least room above top.
func yTicks(top float64) (float64, plot.Ticker) {
	if top <= 0 {
		top = 1
	}
	top *= 1.02
	step, n := 0.0, 0.0
	for intervals := 8.0; intervals >= 4; intervals-- {
		s := niceStep(top / intervals)
		if m := math.Ceil(top/s - 1e-9); step == 0 || m*s < n*step {
			step, n = s, m
		}
	}
	prec := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	if m := step * math.Pow10(prec); math.Abs(m-math.Round(m)) > 1e-9 {
		prec++ // a step of 2.5, 0.25, ...
	}
	ticks := make([]plot.Tick, int(n)+1)
	for i := range ticks {
		v := float64(i) * step
		ticks[i] = plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', prec, 64)}
	}
	return n * step, plot.ConstantTicks(ticks)
}

// niceStep returns the smallest of 1, 2, 2.5 or 5 times a power of ten
// that is at least x.
func niceStep(x float64) float64 {
	pow := math.Pow10(int(math.Floor(math.Log10(x))))
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*pow >= x*(1-1e-9) {
			return m * pow
		}
	}
	return 10 * pow
}

// wrapLabel breaks s onto two lines at the space nearest its middle when
// it is wider than width in style st.
func wrapLabel(st text.Style, s string, width vg.Length) string {
	if st.Width(s) <= width || !strings.Contains(s, " ") {
		return s
	}
	best, bestDiff := -1, len(s)
	for i, r := range s {
		if r != ' ' {
			continue
		}
		if d := abs(len(s)/2 - i); d < bestDiff {
			best, bestDiff = i, d
		}
	}
	return strings.TrimSpace(s[:best]) + "\n" + strings.TrimSpace(s[best+1:])
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// chartBars is the plot.Plotter of a Chart's bars, error bars, value
// labels and reference lines. One plotter draws them all so that the
// layers stack in the order that keeps every figure legible: bars, error
// bars, lines, then the labels on top.
type chartBars struct {
	c     *Chart
	label text.Style // of the value labels
}

// barX returns the centre and the width of series k's bar in group g, in
// data units of the x axis.
func (b *chartBars) barX(g, k int) (centre, width float64) {
	slot := groupSpan / float64(len(b.c.Series))
	return float64(g) - groupSpan/2 + (float64(k)+0.5)*slot, slot * barFill
}

// valueLabels calls f with the text and the position, in data units, of
// each bar's value label: over the bar's error bar, or over the bar.
func (b *chartBars) valueLabels(f func(label string, x, y float64)) {
	for k, s := range b.c.Series {
		for g := range b.c.Groups {
			med, _, hi := s.at(g)
			if math.IsNaN(med) {
				continue
			}
			x, _ := b.barX(g, k)
			f(Num(med), x, orElse(hi, med))
		}
	}
}

// labelGap is the room between a bar, or its error bar, and its label.
const labelGap = 3

// Plot implements plot.Plotter.
func (b *chartBars) Plot(dc draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&dc)
	c := b.c
	whisker := draw.LineStyle{Color: chartInk, Width: 1.2}
	for k, s := range c.Series {
		for g := range c.Groups {
			med, lo, hi := s.at(g)
			if math.IsNaN(med) {
				continue
			}
			x, w := b.barX(g, k)
			left, right := trX(x-w/2), trX(x+w/2)
			bar := vg.Rectangle{Min: vg.Point{X: left, Y: trY(0)}, Max: vg.Point{X: right, Y: trY(med)}}
			dc.SetColor(chartColors[k])
			dc.Fill(bar.Path())
			if math.IsNaN(lo) && math.IsNaN(hi) {
				continue
			}
			lo, hi = orElse(lo, med), orElse(hi, med)
			mid, capW := trX(x), min(8, (right-left)*0.4)
			dc.StrokeLine2(whisker, mid, trY(lo), mid, trY(hi))
			dc.StrokeLine2(whisker, mid-capW/2, trY(lo), mid+capW/2, trY(lo))
			dc.StrokeLine2(whisker, mid-capW/2, trY(hi), mid+capW/2, trY(hi))
		}
	}

	dashed := draw.LineStyle{Color: chartInk, Width: 1.2, Dashes: []vg.Length{6, 4}}
	for _, l := range c.Lines {
		dc.StrokeLine2(dashed, dc.Min.X, trY(l.Y), dc.Max.X, trY(l.Y))
	}

	b.valueLabels(func(label string, x, y float64) {
		at := vg.Point{X: trX(x), Y: trY(y) + labelGap}
		// A white backing keeps the label legible where a line crosses it.
		box := b.label.Rectangle(label).Add(at)
		box.Min.X, box.Max.X = box.Min.X-1, box.Max.X+1
		dc.SetColor(color.White)
		dc.Fill(box.Path())
		dc.FillText(b.label, at, label)
	})
}

// GlyphBoxes implements plot.GlyphBoxer: the value labels, so that the
// plot leaves room for the highest above its bar.
func (b *chartBars) GlyphBoxes(p *plot.Plot) []plot.GlyphBox {
	var boxes []plot.GlyphBox
	b.valueLabels(func(label string, x, y float64) {
		boxes = append(boxes, plot.GlyphBox{
			X:         p.X.Norm(x),
			Y:         p.Y.Norm(y),
			Rectangle: b.label.Rectangle(label).Add(vg.Point{Y: labelGap}),
		})
	})
	return boxes
}

// orElse returns v, or fallback where v is NaN.
func orElse(v, fallback float64) float64 {
	if math.IsNaN(v) {
		return fallback
	}
	return v
}

// chartText returns a text style of fnt at size points in clr.
func chartText(fnt font.Font, size vg.Length, clr color.Color) text.Style {
	return text.Style{
		Color:   clr,
		Font:    font.From(fnt, size),
		Handler: plot.DefaultTextHandler,
	}
}

// rgb returns the opaque colour 0xRRGGBB.
func rgb(v uint32) color.NRGBA {
	return color.NRGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 255}
}

// WriteCharts writes t's charts as PNG files in dir, named after the
// scenario and the chart's title, and a markdown image line for each to
// w, its path relative to dir's parent. With dir "" it does nothing.
func WriteCharts(w io.Writer, dir, scenario string, t *Table) error {
	if dir == "" || len(t.Charts) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, c := range t.Charts {
		name := scenario + "-" + slug(c.Title) + ".png"
		if err := c.WritePNG(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("chart %q: %w", c.Title, err)
		}
		fmt.Fprintf(w, "\n![%s](%s/%s)\n", c.Title, filepath.Base(dir), name)
	}
	return nil
}

// slug returns s in lower case with every run of other characters than
// letters and digits made one "-", at most 60 bytes.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) && r < unicode.MaxASCII || unicode.IsDigit(r) {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String()[:min(b.Len(), 60)], "-")
}

// Add appends one group's figure: the median, minimum and maximum of xs
// (NaN if there are none).
func (s *Series) Add(xs []float64) {
	if len(xs) == 0 {
		s.Median, s.Min, s.Max = append(s.Median, math.NaN()), append(s.Min, math.NaN()), append(s.Max, math.NaN())
		return
	}
	s.Median = append(s.Median, median(xs))
	s.Min = append(s.Min, slices.Min(xs))
	s.Max = append(s.Max, slices.Max(xs))
}

// Put puts xs, the figures of one system in one group, into c: their
// median, minimum and maximum, in the series named name (added if new), at
// the group named group. A group c does not have is left out.
func (c *Chart) Put(name, group string, xs []float64) {
	g := slices.Index(c.Groups, group)
	if g < 0 {
		return
	}
	i := slices.IndexFunc(c.Series, func(s Series) bool { return s.Name == name })
	if i < 0 {
		nan := func() []float64 {
			v := make([]float64, len(c.Groups))
			for k := range v {
				v[k] = math.NaN()
			}
			return v
		}
		c.Series = append(c.Series, Series{Name: name, Median: nan(), Min: nan(), Max: nan()})
		i = len(c.Series) - 1
	}
	if len(xs) > 0 {
		c.Series[i].Median[g], c.Series[i].Min[g], c.Series[i].Max[g] = median(xs), slices.Min(xs), slices.Max(xs)
	}
}

// median returns the median of xs, NaN if there are none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Num formats v with three significant digits at least, and no exponent,
// "–" for NaN: the numbers of the tables and of the charts' labels.
func Num(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "–"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}
