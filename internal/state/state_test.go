package state

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// sample writes one value of every kind.
func sample(w *Writer) {
	w.Int(-3)
	w.Uint64(math.MaxUint64)
	w.Float(math.Copysign(0, -1))
	w.Float(math.NaN())
	w.Bool(true)
	w.Bool(false)
	w.Floats([]float64{1.5, math.Inf(-1), 1e-310})
	w.Floats(nil)
	w.Ints([]int{7, -8})
	w.String("λ")
	w.Bytes([]byte{0, 255})
}

// readSample reads what sample wrote and checks it.
func readSample(t *testing.T, r *Reader) {
	t.Helper()
	if v := r.Int(); v != -3 {
		t.Errorf("Int %d", v)
	}
	if v := r.Uint64(); v != math.MaxUint64 {
		t.Errorf("Uint64 %d", v)
	}
	if v := r.Float(); v != 0 || !math.Signbit(v) {
		t.Errorf("Float %g, want −0", v)
	}
	if v := r.Float(); !math.IsNaN(v) {
		t.Errorf("Float %g, want NaN", v)
	}
	if !r.Bool() || r.Bool() {
		t.Error("Bool")
	}
	if v := r.Floats(); len(v) != 3 || v[0] != 1.5 || !math.IsInf(v[1], -1) || v[2] != 1e-310 {
		t.Errorf("Floats %v", v)
	}
	dst := []float64{}
	r.FloatsInto(dst, "empty")
	if v := r.Ints(); !reflect.DeepEqual(v, []int{7, -8}) {
		t.Errorf("Ints %v", v)
	}
	if v := r.String(); v != "λ" {
		t.Errorf("String %q", v)
	}
	if v := r.Bytes(); !reflect.DeepEqual(v, []byte{0, 255}) {
		t.Errorf("Bytes %v", v)
	}
}

// TestRoundTrip: every kind of value survives Encode and Decode bit for bit.
func TestRoundTrip(t *testing.T) {
	data := Encode("test.Sample", 2, sample)
	err := Decode(data, "test.Sample", 2, func(r *Reader, v uint32) error {
		if v != 2 {
			t.Errorf("version %d", v)
		}
		readSample(t, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAppendEncode: AppendEncode appends what Encode returns, and with the
// capacity of EncodedLen allocates only the Writer given to f.
func TestAppendEncode(t *testing.T) {
	want := Encode("test.Sample", 2, sample)
	got := AppendEncode([]byte("prefix"), "test.Sample", 2, sample)
	if string(got) != "prefix"+string(want) {
		t.Fatalf("AppendEncode after a prefix differs from Encode")
	}
	if n := EncodedLen("test.Sample", len(want)-EncodedLen("test.Sample", 0)); n != len(want) {
		t.Fatalf("EncodedLen %d, want %d", n, len(want))
	}
	x := []float64{1, 2, 3}
	f := func(w *Writer) { w.Int(1); w.Floats(x); w.Bool(true) }
	n := EncodedLen("test.Floats", 8+8+8*len(x)+1)
	dst := make([]byte, 0, n)
	if a := testing.AllocsPerRun(10, func() { dst = AppendEncode(dst[:0], "test.Floats", 1, f) }); a > 1 {
		t.Errorf("AppendEncode into room enough: %v allocations, want at most 1 (the Writer)", a)
	}
	if len(dst) != n {
		t.Errorf("length %d, EncodedLen %d", len(dst), n)
	}
}

// TestDecodeRefuses: truncation at every length, every flipped byte, another
// kind, a version out of range, a payload left unread or read past its end,
// and lengths larger than the data are errors wrapping ErrCorrupt, never a
// panic or a large allocation.
func TestDecodeRefuses(t *testing.T) {
	data := Encode("test.Sample", 1, sample)
	read := func(r *Reader, _ uint32) error { readSample(&testing.T{}, r); return nil }
	for n := 0; n < len(data); n++ {
		if err := Decode(data[:n], "test.Sample", 1, read); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x40
		if err := Decode(bad, "test.Sample", 1, read); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"kind", Decode(data, "test.Other", 1, read), `state of "test.Sample", want "test.Other"`},
		{"version", Decode(Encode("test.Sample", 3, sample), "test.Sample", 2, read), "version 3, this code reads 1 to 2"},
		{"version 0", Decode(Encode("test.Sample", 0, sample), "test.Sample", 2, read), "version 0"},
		{"unread", Decode(data, "test.Sample", 1, func(r *Reader, _ uint32) error { r.Int(); return nil }), "bytes left after"},
		{"past the end", Decode(Encode("test.Sample", 1, func(w *Writer) { w.Int(1) }), "test.Sample", 1, func(r *Reader, _ uint32) error { r.Int(); r.Float(); return nil }), "needs 8 bytes, 0 left"},
		{"huge length", Decode(Encode("test.Sample", 1, func(w *Writer) { w.Int(1 << 60) }), "test.Sample", 1, func(r *Reader, _ uint32) error { r.Floats(); return nil }), "floats of 1152921504606846976 elements"},
		{"negative length", Decode(Encode("test.Sample", 1, func(w *Writer) { w.Int(-1) }), "test.Sample", 1, func(r *Reader, _ uint32) error { r.Ints(); return nil }), "ints of -1 elements"},
		{"FloatsInto length", Decode(Encode("test.Sample", 1, func(w *Writer) { w.Floats([]float64{1, 2}) }), "test.Sample", 1, func(r *Reader, _ uint32) error { r.FloatsInto(make([]float64, 3), "velocity"); return nil }), "velocity has 2 values, want 3"},
		{"bool byte", Decode(Encode("test.Sample", 1, func(w *Writer) { w.Uint64(7) }), "test.Sample", 1, func(r *Reader, _ uint32) error {
			r.Bool()
			r.take(7, "rest")
			return nil
		}), "bool byte 7"},
		{"Fail", Decode(data, "test.Sample", 1, func(r *Reader, _ uint32) error { r.Fail("rate %g", 1.5); return nil }), "rate 1.5"},
		{"not a state", Decode([]byte("hello, world"), "test.Sample", 1, read), "no \"SOST\" header"},
	} {
		if !errors.Is(tc.err, ErrCorrupt) || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrCorrupt and %q", tc.name, tc.err, tc.want)
		}
	}
	// An error of f itself is returned as it is.
	mine := errors.New("settings differ")
	if err := Decode(data, "test.Sample", 1, func(*Reader, uint32) error { return mine }); err != mine {
		t.Errorf("f's error: %v", err)
	}
}
