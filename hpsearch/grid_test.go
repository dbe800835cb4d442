package hpsearch

import (
	"context"
	"math"
	"testing"
)

// TestGridAxes checks the values of one-parameter grids: endpoints included,
// equal steps on linear scales, equal ratios on log scales, integers rounded
// without duplicates, the centre for a single value.
func TestGridAxes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     Param
		count int
		want  []float64
	}{
		{"linear", Param{Min: 0, Max: 1}, 5, []float64{0, 0.25, 0.5, 0.75, 1}},
		{"linear shifted", Param{Min: -0.1, Max: 0.3}, 3, []float64{-0.1, 0.1, 0.3}},
		{"log decades", Param{Min: 1e-3, Max: 1, Scale: Log}, 4, []float64{1e-3, 1e-2, 1e-1, 1}},
		{"log half decades", Param{Min: 1e-2, Max: 1, Scale: Log}, 5, []float64{1e-2, math.Sqrt(10) * 1e-2, 1e-1, math.Sqrt(10) * 1e-1, 1}},
		{"log two", Param{Min: 3, Max: 7, Scale: Log}, 2, []float64{3, 7}},
		{"single linear", Param{Min: 2, Max: 4}, 1, []float64{3}},
		{"single log", Param{Min: 1e-4, Max: 1, Scale: Log}, 1, []float64{1e-2}},
		{"integer dedup", Param{Min: 1, Max: 4, Integer: true}, 10, []float64{1, 2, 3, 4}},
		{"integer inner bounds", Param{Min: 0.5, Max: 4.5, Integer: true}, 3, []float64{1, 2.5, 4}},
		{"integer log", Param{Min: 1, Max: 1000, Scale: Log, Integer: true}, 7, []float64{1, 3, 10, 32, 100, 316, 1000}},
		{"integer log dedup", Param{Min: 1, Max: 8, Scale: Log, Integer: true}, 10, []float64{1, 2, 3, 4, 5, 6, 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.Name = "x"
			s := mustSpace(t, tc.p)
			pts, err := (&Grid{Counts: []int{tc.count}}).Points(s, 0)
			if err != nil {
				t.Fatal(err)
			}
			if tc.p.Integer {
				// 2.5 above is not an integer: the centre rounds to 2 or 3.
				for k, w := range tc.want {
					if w != math.Trunc(w) {
						tc.want[k] = math.Round(w)
					}
				}
			}
			if len(pts) != len(tc.want) {
				t.Fatalf("grid %v, want %v", pts, tc.want)
			}
			for k, p := range pts {
				v := p.Get("x")
				if (tc.count > 1 && (k == 0 || k == len(pts)-1)) || tc.p.Integer {
					if v != tc.want[k] { // endpoints and integers are exact
						t.Fatalf("grid value %d = %v, want exactly %v", k, v, tc.want[k])
					}
				} else if math.Abs(v-tc.want[k]) > 1e-14*math.Abs(tc.want[k]) {
					t.Fatalf("grid value %d = %v, want %v", k, v, tc.want[k])
				}
				if tc.count > 1 && !tc.p.Integer {
					if u := p.Unit()[0]; math.Abs(u-float64(k)/float64(tc.count-1)) > 1e-14 {
						t.Fatalf("grid coordinate %d = %v, want %v", k, u, float64(k)/float64(tc.count-1))
					}
				}
			}
		})
	}
}

// TestGridOrder checks the row-major enumeration (last parameter fastest)
// and the even split of a budget.
func TestGridOrder(t *testing.T) {
	s := mustSpace(t, Param{Name: "a", Min: 0, Max: 1}, Param{Name: "b", Min: 10, Max: 30})
	pts, err := (&Grid{Counts: []int{2, 3}}).Points(s, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]float64{{0, 10}, {0, 20}, {0, 30}, {1, 10}, {1, 20}, {1, 30}}
	if len(pts) != len(want) {
		t.Fatalf("%d points, want %d", len(pts), len(want))
	}
	for k, p := range pts {
		if p.Get("a") != want[k][0] || p.Get("b") != want[k][1] {
			t.Fatalf("point %d = %v, want a=%v b=%v", k, p, want[k][0], want[k][1])
		}
	}

	s3 := mustSpace(t, Param{Name: "a", Max: 1}, Param{Name: "b", Max: 1}, Param{Name: "c", Max: 1})
	for _, tc := range []struct {
		space        *Space
		budget, size int
	}{
		{s, 30, 25}, {s, 36, 36}, {s, 3, 1}, {s, 0, 100}, {s3, 30, 27}, {s3, 26, 8}, {s3, 1, 1},
	} {
		pts, err := (&Grid{}).Points(tc.space, tc.budget)
		if err != nil {
			t.Fatal(err)
		}
		if len(pts) != tc.size {
			t.Errorf("%d-D grid for budget %d has %d points, want %d", tc.space.Dim(), tc.budget, len(pts), tc.size)
		}
	}

	for _, counts := range [][]int{{2}, {2, 0}, {2, -1}} {
		if _, err := (&Grid{Counts: counts}).Points(s, 0); err == nil {
			t.Errorf("Counts %v accepted", counts)
		}
	}
}

// TestGridSearch runs a grid search and checks that the history is the grid
// in order, and that a budget below the grid size runs its first points.
func TestGridSearch(t *testing.T) {
	s := bowlSpace(t)
	g := &Grid{Counts: []int{4, 3}}
	pts, _ := g.Points(s, 0)
	for _, budget := range []int{0, 5} {
		res, err := Search(context.Background(), s, bowl, g, &Settings{Budget: budget, Workers: 3})
		if err != nil {
			t.Fatal(err)
		}
		n := len(pts)
		if budget > 0 {
			n = budget
		}
		if len(res.History) != n {
			t.Fatalf("budget %d: %d trials, want %d", budget, len(res.History), n)
		}
		for k, tr := range res.History {
			if tr.Index != k || tr.Point.String() != pts[k].String() {
				t.Fatalf("trial %d: index %d at %v, want %v", k, tr.Index, tr.Point, pts[k])
			}
		}
	}
}
