package nn

import (
	"bytes"
	"errors"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func savedNet(t *testing.T) (*Network, []byte) {
	t.Helper()
	net := New([]int{3, 4, 2, 3}, []Activation{ReLU{}, Tanh{}, Softmax{}})
	net.Init(He{}, newRand(1))
	for _, l := range net.layers {
		for j := 0; j < l.b.Len(); j++ {
			l.b.SetVec(j, newRand(uint64(j)).NormFloat64())
		}
	}
	// Values whose bits must survive exactly.
	net.Layer(0).W().Set(0, 0, math.SmallestNonzeroFloat64)
	net.Layer(0).W().Set(1, 1, -0.0)
	net.Layer(1).W().Set(0, 0, math.MaxFloat64)
	var buf bytes.Buffer
	if err := net.Save(&buf); err != nil {
		t.Fatal(err)
	}
	return net, buf.Bytes()
}

func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

func TestSaveLoadRoundTrip(t *testing.T) {
	net, data := savedNet(t)
	wantLen := 8 + 4 + 4 + 4*4 + 3 + 4 + 8*net.NumParams() + 4
	if len(data) != wantLen {
		t.Errorf("file is %d bytes, want %d", len(data), wantLen)
	}
	got, err := Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !sameBits(got.Params(nil), net.Params(nil)) {
		t.Error("Read: parameters differ")
	}
	for l := 0; l < net.NumLayers(); l++ {
		if got.Layer(l).Activation() != net.Layer(l).Activation() {
			t.Errorf("Read: layer %d activation %s, want %s", l, got.Layer(l).Activation().Name(), net.Layer(l).Activation().Name())
		}
	}
	other := New([]int{3, 4, 2, 3}, []Activation{ReLU{}, Tanh{}, Softmax{}})
	if err := other.Load(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if !sameBits(other.Params(nil), net.Params(nil)) {
		t.Error("Load: parameters differ")
	}
	// The loaded network computes the same function.
	X := randDense(newRand(2), 4, 3, 1)
	f := mat.DenseCopyOf(net.Forward(X))
	equalApprox(t, "loaded outputs", other.Forward(X), f, 0, 0)

	// Files.
	path := filepath.Join(t.TempDir(), "net.bin")
	if err := net.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	fromFile, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !sameBits(fromFile.Params(nil), net.Params(nil)) {
		t.Error("ReadFile: parameters differ")
	}
	other.SetParams(make([]float64, other.NumParams()))
	if err := other.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if !sameBits(other.Params(nil), net.Params(nil)) {
		t.Error("LoadFile: parameters differ")
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("ReadFile of a missing file: no error")
	}
}

func TestLoadMismatch(t *testing.T) {
	_, data := savedNet(t)
	cases := []struct {
		sizes []int
		acts  []Activation
		want  string
	}{
		{[]int{3, 4, 3}, []Activation{ReLU{}, Softmax{}}, "nn: file has 3 layers, network has 2"},
		{[]int{5, 4, 2, 3}, []Activation{ReLU{}, Tanh{}, Softmax{}}, "nn: input size is 3 in file, network has 5"},
		{[]int{3, 4, 7, 3}, []Activation{ReLU{}, Tanh{}, Softmax{}}, "nn: layer 1 weights are 2×4 in file, network has 7×4"},
		{[]int{3, 4, 2, 3}, []Activation{ReLU{}, Sigmoid{}, Softmax{}}, "nn: layer 1 activation is tanh in file, network has sigmoid"},
	}
	for _, c := range cases {
		net := New(c.sizes, c.acts)
		net.Init(Glorot{}, newRand(3))
		before := net.Params(nil)
		err := net.Load(bytes.NewReader(data))
		if err == nil || err.Error() != c.want {
			t.Errorf("Load into %v: error %v, want %q", c.sizes, err, c.want)
		}
		if !errors.Is(err, ErrMismatch) {
			t.Errorf("Load into %v: error does not match ErrMismatch", c.sizes)
		}
		if !sameBits(net.Params(nil), before) {
			t.Errorf("Load into %v: failed load changed the network", c.sizes)
		}
	}
	// The autoencoder message of the package documentation.
	var buf bytes.Buffer
	if err := New([]int{6, 5, 500, 250}, []Activation{Sigmoid{}, Sigmoid{}, Identity{}}).Save(&buf); err != nil {
		t.Fatal(err)
	}
	err := New([]int{6, 5, 500, 30}, []Activation{Sigmoid{}, Sigmoid{}, Identity{}}).Load(&buf)
	if want := "nn: layer 2 weights are 250×500 in file, network has 30×500"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestLoadTruncated(t *testing.T) {
	net, data := savedNet(t)
	want := net.Params(nil)
	for n := 0; n < len(data); n++ {
		_, err := Read(bytes.NewReader(data[:n]))
		if !errors.Is(err, ErrFormat) || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasPrefix(err.Error(), "nn: truncated file") {
			t.Fatalf("Read of %d of %d bytes: error %v", n, len(data), err)
		}
		if err := net.Load(bytes.NewReader(data[:n])); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Load of %d of %d bytes: error %v", n, len(data), err)
		}
	}
	if !sameBits(net.Params(nil), want) {
		t.Error("failed loads changed the network")
	}
}

// TestLoadCorrupt flips every bit of the file in turn: each must be
// reported (CRC-32C detects all single-bit errors).
func TestLoadCorrupt(t *testing.T) {
	net, data := savedNet(t)
	want := net.Params(nil)
	bad := make([]byte, len(data))
	for i := range data {
		for bit := 0; bit < 8; bit++ {
			copy(bad, data)
			bad[i] ^= 1 << bit
			if _, err := Read(bytes.NewReader(bad)); !errors.Is(err, ErrFormat) {
				t.Fatalf("byte %d bit %d flipped: Read error %v", i, bit, err)
			}
			if err := net.Load(bytes.NewReader(bad)); err == nil {
				t.Fatalf("byte %d bit %d flipped: Load succeeded", i, bit)
			}
		}
	}
	if !sameBits(net.Params(nil), want) {
		t.Error("failed loads changed the network")
	}
	checks := []struct {
		edit func(b []byte)
		want string
	}{
		{func(b []byte) { b[0] = 'X' }, "bad magic"},
		{func(b []byte) { b[8] = 9 }, "version 9"},
	}
	for _, c := range checks {
		copy(bad, data)
		c.edit(bad)
		if _, err := Read(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to mention %q", err, c.want)
		}
	}
	copy(bad, data)
	bad[len(bad)-10] ^= 1
	if _, err := Read(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("flipped parameter bit: error %v", err)
	}
}

type customAct struct{ Identity }

func (customAct) Name() string { return "custom" }

func TestSaveCustomActivation(t *testing.T) {
	net := New([]int{2, 2}, []Activation{customAct{}})
	if err := net.Save(io.Discard); err == nil || !strings.Contains(err.Error(), "custom") {
		t.Errorf("Save with a custom activation: error %v", err)
	}
}
