package nn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
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
	return net, saveBytes(t, net)
}

// saveBytes returns the file that net.Save writes.
func saveBytes(t *testing.T, net *Network) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := net.Save(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
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
	X := testutil.RandDense(newRand(2), 4, 3, 1)
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

// forEachBitFlip calls f with a copy of data in which bit bit of byte i is
// flipped, for every bit of data in turn.
func forEachBitFlip(data []byte, f func(i, bit int, bad []byte)) {
	bad := make([]byte, len(data))
	for i := range data {
		for bit := 0; bit < 8; bit++ {
			copy(bad, data)
			bad[i] ^= 1 << bit
			f(i, bit, bad)
		}
	}
}

// TestLoadCorrupt flips every bit of the file in turn: each must be
// reported (CRC-32C detects all single-bit errors).
func TestLoadCorrupt(t *testing.T) {
	net, data := savedNet(t)
	want := net.Params(nil)
	forEachBitFlip(data, func(i, bit int, bad []byte) {
		if _, err := Read(bytes.NewReader(bad)); !errors.Is(err, ErrFormat) {
			t.Fatalf("byte %d bit %d flipped: Read error %v", i, bit, err)
		}
		if err := net.Load(bytes.NewReader(bad)); err == nil {
			t.Fatalf("byte %d bit %d flipped: Load succeeded", i, bit)
		}
	})
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
	bad := make([]byte, len(data))
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

// normNet returns a network with batch normalisation, mean-only batch
// normalisation and whitening, with non-trivial parameters, running
// statistics, options and whitening.
func normNet(t *testing.T) *Network {
	t.Helper()
	s := normSpecs[4] // bn on 0; whitened 1, 2; mean-only on 2
	net, X, _ := s.build(3000)
	net.Layer(0).SetNormOptions(1e-3, 0.3)
	net.Forward(X) // moves the running statistics
	return net
}

func extras(net *Network) [][]float64 {
	var v [][]float64
	for _, ly := range net.layers {
		for _, x := range ly.extraValues() {
			v = append(v, slices.Clone(x))
		}
	}
	return v
}

func sameExtras(a, b [][]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameBits(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestSaveLoadVersion2 checks that networks with normalisation and
// whitening are saved in version 2 and read back exactly: same parameters,
// γ, β, running statistics, options, U and μ to the bit, and the same
// outputs to the bit in both modes; and that Load refuses a network whose
// normalisation or whitening differs.
func TestSaveLoadVersion2(t *testing.T) {
	net := normNet(t)
	data := saveBytes(t, net)
	savedTheta, savedExtra := net.Params(nil), extras(net)
	if v := binary.LittleEndian.Uint32(data[8:]); v != 2 {
		t.Fatalf("version %d, want 2", v)
	}
	nExtra := 0
	for _, x := range extras(net) {
		nExtra += len(x)
	}
	L := net.NumLayers()
	if want := 16 + 4*(L+1) + 2*L + 4 + 8*(net.NumParams()+nExtra) + 4; len(data) != want {
		t.Errorf("file is %d bytes, want %d", len(data), want)
	}
	got, err := Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	other := New(net.Sizes(), []Activation{Sigmoid{}, Tanh{}, Sigmoid{}})
	other.SetNorm(0, BatchNorm)
	other.SetNorm(2, MeanOnlyBatchNorm)
	other.SetWhitened(1, true)
	other.SetWhitened(2, true)
	if err := other.Load(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	// Expected outputs in evaluation mode, then in training mode (which
	// moves the running statistics).
	X := testutil.RandDense(newRand(3001), 5, 4, 1)
	var want []*mat.Dense
	for _, train := range []bool{false, true} {
		net.SetTraining(train)
		want = append(want, mat.DenseCopyOf(net.Forward(X)))
	}
	for name, g := range map[string]*Network{"Read": got, "Load": other} {
		if !sameBits(g.Params(nil), savedTheta) || !sameExtras(extras(g), savedExtra) {
			t.Errorf("%s: parameters differ", name)
		}
		for l := 0; l < L; l++ {
			if g.Layer(l).Norm() != net.Layer(l).Norm() || g.Layer(l).Whitened() != net.Layer(l).Whitened() {
				t.Errorf("%s: layer %d norm %v whitened %v", name, l, g.Layer(l).Norm(), g.Layer(l).Whitened())
			}
		}
		if eps, m := g.Layer(0).NormOptions(); eps != 1e-3 || m != 0.3 {
			t.Errorf("%s: options %v %v", name, eps, m)
		}
		for k, train := range []bool{false, true} {
			g.SetTraining(train)
			equalApprox(t, name+" outputs", g.Forward(X), want[k], 0, 0)
		}
	}

	mismatch := []struct {
		build func() *Network
		want  string
	}{
		{func() *Network { return New(net.Sizes(), []Activation{Sigmoid{}, Tanh{}, Sigmoid{}}) },
			"nn: layer 0 normalisation is batch in file, network has none"},
		{func() *Network {
			n := New(net.Sizes(), []Activation{Sigmoid{}, Tanh{}, Sigmoid{}})
			n.SetNorm(0, BatchNorm)
			n.SetNorm(2, MeanOnlyBatchNorm)
			n.SetWhitened(1, true)
			return n
		}, "nn: layer 2 whitening is on in file, network has off"},
	}
	for _, c := range mismatch {
		n := c.build()
		before := n.Params(nil)
		err := n.Load(bytes.NewReader(data))
		if err == nil || err.Error() != c.want || !errors.Is(err, ErrMismatch) {
			t.Errorf("Load: error %v, want %q", err, c.want)
		}
		if !sameBits(before, n.Params(nil)) {
			t.Error("failed Load changed the network")
		}
	}
	// A version-1 file does not fit a normalised network.
	_, v1 := savedNet(t)
	n := New([]int{3, 4, 2, 3}, []Activation{ReLU{}, Tanh{}, Softmax{}})
	n.SetNorm(1, MeanOnlyBatchNorm)
	if err := n.Load(bytes.NewReader(v1)); err == nil || err.Error() != "nn: layer 1 normalisation is none in file, network has mean-only" {
		t.Errorf("Load of a version-1 file into a normalised network: %v", err)
	}
}

// TestLoadVersion2Corrupt checks that every truncation and every bit flip
// of a version-2 file is reported, and that invalid flags and options are
// refused even with valid checksums.
func TestLoadVersion2Corrupt(t *testing.T) {
	net := normNet(t)
	data := saveBytes(t, net)
	for n := 0; n < len(data); n++ {
		if _, err := Read(bytes.NewReader(data[:n])); !errors.Is(err, ErrFormat) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Read of %d of %d bytes: error %v", n, len(data), err)
		}
	}
	forEachBitFlip(data, func(i, bit int, bad []byte) {
		if _, err := Read(bytes.NewReader(bad)); !errors.Is(err, ErrFormat) {
			t.Fatalf("byte %d bit %d flipped: Read error %v", i, bit, err)
		}
	})
	L := net.NumLayers()
	hdrEnd := 16 + 4*(L+1) + 2*L // start of the header checksum
	recrc := func(b []byte) {
		binary.LittleEndian.PutUint32(b[hdrEnd:], crc32.Checksum(b[:hdrEnd], crcTable))
		binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], crcTable))
	}
	bad := make([]byte, len(data))
	copy(bad, data)
	bad[hdrEnd-1] = 0x8
	recrc(bad)
	if _, err := Read(bytes.NewReader(bad)); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "invalid flags 0x8 for layer 2") {
		t.Errorf("invalid flags: error %v", err)
	}
	copy(bad, data)
	binary.LittleEndian.PutUint64(bad[hdrEnd+4+8*net.NumParams():], math.Float64bits(-1)) // layer 0's ε
	recrc(bad)
	if _, err := Read(bytes.NewReader(bad)); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "layer 0: invalid normalisation ε -1") {
		t.Errorf("invalid ε: error %v", err)
	}
}

// TestReadVersion1 reads a version-1 file written byte by byte from the
// format's documentation, independently of Save, and checks that plain
// networks are still saved in version 1.
func TestReadVersion1(t *testing.T) {
	var b []byte
	b = append(b, "SOGO.NN\n"...)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, 2) // L
	for _, s := range []uint32{2, 3, 1} {      // sizes
		b = binary.LittleEndian.AppendUint32(b, s)
	}
	b = append(b, 2, 0) // tanh, identity
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	theta := []float64{1, 2, 3, 4, 5, 6, 0.5, -0.5, 0.25, 7, 8, 9, -1}
	for _, v := range theta {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	net, err := Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !sameBits(net.Params(nil), theta) || net.Layer(0).Activation().Name() != "tanh" || !net.Plain() {
		t.Errorf("version-1 file read as %v", net.Params(nil))
	}
	// W_0 is 3×2 stored by columns.
	if net.Layer(0).W().At(1, 0) != 2 || net.Layer(0).W().At(0, 1) != 4 {
		t.Errorf("W_0 = %v", mat.Formatted(net.Layer(0).W()))
	}
	if !bytes.Equal(saveBytes(t, net), b) {
		t.Error("Save of a plain network does not reproduce the version-1 file")
	}
}
