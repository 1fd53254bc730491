package bench

import (
	"fmt"
	"math"
	"slices"
)

// Figure is a measurement repeated over several runs.
type Figure struct {
	Median, Min, Max float64
	N                int
}

// Summarize returns the median, min and max of xs.
func Summarize(xs []float64) Figure {
	if len(xs) == 0 {
		return Figure{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Figure{Median: med, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// Percentile returns the p-th percentile (0..100) of xs, nearest rank.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(rank, len(s)-1))]
}

// Format renders the figure as "median (min–max)" with format f for each number.
func (f Figure) Format(format string) string {
	if f.N == 0 || math.IsNaN(f.Median) {
		return "—"
	}
	if f.N == 1 {
		return fmt.Sprintf(format, f.Median)
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", f.Median, f.Min, f.Max)
}

// Rate formats rows (or items, changes) per second compactly.
func Rate(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// RateFigure renders a figure of rates as "median (min–max) /s".
func RateFigure(f Figure, unit string) string {
	if f.N == 0 {
		return "—"
	}
	if f.N == 1 {
		return Rate(f.Median) + " " + unit
	}
	return fmt.Sprintf("%s (%s–%s) %s", Rate(f.Median), Rate(f.Min), Rate(f.Max), unit)
}
