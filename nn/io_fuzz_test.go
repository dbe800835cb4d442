package nn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var writeFuzzCorpus = flag.Bool("write-fuzz-corpus", false,
	"write the seeds of FuzzRead and FuzzReadCorrupt to testdata/fuzz (TestWriteFuzzCorpus)")

// fuzzNet is a named network file for the seeds.
type fuzzNet struct {
	name string
	data []byte
}

// fuzzValidFiles returns the files of networks covering every activation,
// both normalisations, whitening and both format versions.
func fuzzValidFiles(tb testing.TB) []fuzzNet {
	tb.Helper()
	save := func(net *Network) []byte {
		var buf bytes.Buffer
		if err := net.Save(&buf); err != nil {
			tb.Fatal(err)
		}
		return buf.Bytes()
	}
	var files []fuzzNet
	tiny := New([]int{1, 1}, []Activation{Identity{}})
	tiny.SetParams([]float64{2, -1})
	files = append(files, fuzzNet{"v1-identity-1-1", save(tiny)})
	sig := New([]int{2, 3, 1}, []Activation{Sigmoid{}, Sigmoid{}})
	sig.Init(Glorot{}, newRand(7))
	files = append(files, fuzzNet{"v1-sigmoid-sigmoid", save(sig)})
	// The network of savedNet, with values whose bits must survive.
	rts := New([]int{3, 4, 2, 3}, []Activation{ReLU{}, Tanh{}, Softmax{}})
	rts.Init(He{}, newRand(1))
	for _, l := range rts.layers {
		for j := 0; j < l.b.Len(); j++ {
			l.b.SetVec(j, newRand(uint64(j)).NormFloat64())
		}
	}
	rts.Layer(0).W().Set(0, 0, math.SmallestNonzeroFloat64)
	rts.Layer(0).W().Set(1, 1, math.Copysign(0, -1))
	rts.Layer(1).W().Set(0, 0, math.MaxFloat64)
	rts.Layer(1).W().Set(1, 0, math.Inf(-1))
	rts.Layer(2).W().Set(0, 1, math.Float64frombits(0x7ff0000000000123)) // a signalling NaN
	files = append(files, fuzzNet{"v1-relu-tanh-softmax", save(rts)})
	for i, s := range normSpecs {
		net, _, _ := s.build(uint64(100 + i))
		files = append(files, fuzzNet{fmt.Sprintf("v2-normspec-%d", i), save(net)})
	}
	// A version-2 file whose flags are all zero: valid, read as a plain
	// network, which Save writes as version 1.
	v2plain := slices.Clone(files[0].data[:16+4*2+1])
	binary.LittleEndian.PutUint32(v2plain[8:], 2)
	v2plain = append(v2plain, 0, 0, 0, 0, 0) // flags and checksum
	v2plain = append(v2plain, files[0].data[16+4*2+1+4:]...)
	files = append(files, fuzzNet{"v2-all-flags-zero", fixCRCs(v2plain)})
	return files
}

// fuzzOddFiles returns invalid files derived from valid; their checksums
// are those of valid where they apply, and FuzzRead recomputes them.
func fuzzOddFiles(valid []byte) []fuzzNet {
	put32 := func(b []byte, off int, v uint32) []byte {
		b = slices.Clone(b)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	hdr := func(version, nl uint32, sizes []uint32, rest ...byte) []byte {
		b := []byte(fileMagic)
		b = binary.LittleEndian.AppendUint32(b, version)
		b = binary.LittleEndian.AppendUint32(b, nl)
		for _, s := range sizes {
			b = binary.LittleEndian.AppendUint32(b, s)
		}
		b = append(b, rest...)
		return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	}
	return []fuzzNet{
		{"empty", nil},
		{"magic-only", []byte(fileMagic)},
		{"truncated-7", valid[:7]},
		{"truncated-16", valid[:16]},
		{"truncated-last-byte", valid[:len(valid)-1]},
		{"truncated-mid-params", valid[:len(valid)/2]},
		{"trailing-byte", append(slices.Clone(valid), 0xff)},
		{"bad-magic", append([]byte("SOGO.NM\n"), valid[8:]...)},
		{"version-0", put32(valid, 8, 0)},
		{"version-3", put32(valid, 8, 3)},
		{"zero-layers", put32(valid, 12, 0)},
		{"65536-layers-header-only", put32(valid[:16], 12, maxLayers)},
		{"65537-layers", put32(valid[:16], 12, maxLayers+1)},
		{"size-zero", put32(valid, 16, 0)},
		{"size-2^24+1", put32(valid, 16, maxSize+1)},
		// 2²³·(2⁷+1)+... parameters declared, none present.
		{"1G-params-declared", hdr(1, 1, []uint32{1 << 23, 1 << 7}, 0)},
		{"2^31-params-declared", hdr(1, 1, []uint32{1 << 24, 1 << 7}, 0)},
		{"whitened-2^24-inputs", hdr(2, 1, []uint32{1 << 24, 1}, 0, flagWhitened)},
		{"bad-activation", hdr(1, 1, []uint32{1, 1}, 5)},
		{"softmax-hidden", hdr(1, 2, []uint32{1, 2, 1}, 4, 0)},
		{"bad-norm-3", hdr(2, 1, []uint32{1, 1}, 0, 3)},
		{"bad-flag-bit", hdr(2, 1, []uint32{1, 1}, 0, 8)},
		// A batch-normalised 1→1 layer with ε = 0 (the body is W, b, ε,
		// momentum, γ, β, mean, variance).
		{"bn-eps-zero", fixCRCs(append(hdr(2, 1, []uint32{1, 1}, 0, 1),
			f64s(1, 0, 0, 0.1, 1, 0, 0, 1, 0, 0, 0, 0)...))},
		{"bn-momentum-2", fixCRCs(append(hdr(2, 1, []uint32{1, 1}, 0, 1),
			f64s(1, 0, 1e-5, 2, 1, 0, 0, 1, 0, 0, 0, 0)...))},
		{"meanonly-nan-eps", fixCRCs(append(hdr(2, 1, []uint32{1, 1}, 0, 2),
			f64s(1, 0, math.NaN(), 0.1, 0, 0, 0)...))},
		{"whitened-1-1", fixCRCs(append(hdr(2, 1, []uint32{1, 1}, 3, 4),
			f64s(1, 0, 0.5, 2, 0)...))},
	}
}

// f64s returns the little-endian bytes of v.
func f64s(v ...float64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

// fileLayout is the layout of a network file, worked out from the format
// documentation independently of the reader.
type fileLayout struct {
	version uint32
	hdrLen  int   // bytes before the header checksum
	bodyEnd int64 // bytes before the final checksum; -1 if the header is invalid or truncated
}

// layoutOf returns the layout of b, and ok false if b has no valid start
// (magic, version, layer count) from which the header length follows.
func layoutOf(b []byte) (lay fileLayout, ok bool) {
	if len(b) < 16 || string(b[:8]) != fileMagic {
		return lay, false
	}
	v, nl := binary.LittleEndian.Uint32(b[8:]), binary.LittleEndian.Uint32(b[12:])
	if (v != 1 && v != 2) || nl == 0 || nl > maxLayers {
		return lay, false
	}
	n := int(nl)
	nf := 0
	if v == 2 {
		nf = n
	}
	lay = fileLayout{version: v, hdrLen: 16 + 4*(n+1) + n + nf, bodyEnd: -1}
	if len(b) < lay.hdrLen+4 {
		return lay, true
	}
	sizes := make([]uint64, n+1)
	for l := range sizes {
		s := binary.LittleEndian.Uint32(b[16+4*l:])
		if s == 0 || s > maxSize {
			return lay, true
		}
		sizes[l] = uint64(s)
	}
	ids := b[16+4*(n+1) : 16+4*(n+1)+n]
	flags := make([]byte, n)
	copy(flags, b[16+4*(n+1)+n:lay.hdrLen])
	var values, bound uint64
	for l := 0; l < n; l++ {
		if ids[l] > 4 || (ids[l] == 4 && l != n-1) {
			return lay, true
		}
		f := flags[l]
		if f&^7 != 0 || f&3 == 3 {
			return lay, true
		}
		in, out := sizes[l], sizes[l+1]
		values += out * (in + 1)
		bound += out * (in + 1)
		switch f & 3 {
		case 1:
			values += 2 + 4*out
			bound += 2 + 4*out
		case 2:
			values += 2 + 2*out
			bound += 2 + 4*out // the reader's limit counts 4 vectors for any normalisation
		}
		if f&4 != 0 {
			values += in + in*in
			bound += in + in*in
		}
		if bound > maxParams {
			return lay, true
		}
	}
	lay.bodyEnd = int64(lay.hdrLen) + 4 + 8*int64(values)
	return lay, true
}

// fixCRCs returns a copy of b with its header and final checksums
// recomputed where b is long enough to hold them.
func fixCRCs(b []byte) []byte {
	b = slices.Clone(b)
	lay, ok := layoutOf(b)
	if !ok || len(b) < lay.hdrLen+4 {
		return b
	}
	binary.LittleEndian.PutUint32(b[lay.hdrLen:], crc32.Checksum(b[:lay.hdrLen], crcTable))
	if lay.bodyEnd >= 0 && int64(len(b)) >= lay.bodyEnd+4 {
		binary.LittleEndian.PutUint32(b[lay.bodyEnd:], crc32.Checksum(b[:lay.bodyEnd], crcTable))
	}
	return b
}

// checkRead reads in and checks the result: an error matching ErrFormat
// (and io.ErrUnexpectedEOF when in is shorter than its valid header
// declares) or a network that round-trips exactly through Save and Read.
// crcFixed says that in's checksums are right wherever in holds them. It
// returns the number of bytes consumed on success, -1 on error.
func checkRead(t *testing.T, in []byte, crcFixed bool) int {
	t.Helper()
	lay, ok := layoutOf(in)
	r := bytes.NewReader(in)
	net, err := Read(r)
	if err != nil {
		if net != nil {
			t.Fatalf("non-nil network with error %v", err)
		}
		if !errors.Is(err, ErrFormat) {
			t.Fatalf("error %v does not match ErrFormat", err)
		}
		// The reader reads 16 bytes, then the rest of a header whose
		// start is valid, then (if the header is valid) the body.
		truncated := len(in) < 16 || ok && (len(in) < lay.hdrLen+4 ||
			crcFixed && lay.bodyEnd >= 0 && int64(len(in)) < lay.bodyEnd+4)
		if truncated && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%d-byte input, header declares %d+%d: error %v does not match io.ErrUnexpectedEOF",
				len(in), lay.hdrLen+4, lay.bodyEnd+4, err)
		}
		if crcFixed && !truncated && errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%d-byte input, header declares %d+%d: error %v matches io.ErrUnexpectedEOF",
				len(in), lay.hdrLen+4, lay.bodyEnd+4, err)
		}
		return -1
	}
	consumed := len(in) - r.Len()
	if !ok || lay.bodyEnd < 0 {
		t.Fatalf("Read accepted a file with an invalid header (layout %+v, ok %v)", lay, ok)
	}
	if int64(consumed) != lay.bodyEnd+4 {
		t.Fatalf("Read consumed %d bytes, header declares %d", consumed, lay.bodyEnd+4)
	}
	if !crcFixed && !bytes.Equal(fixCRCs(in[:consumed]), in[:consumed]) {
		t.Fatal("Read accepted a file with a wrong checksum")
	}
	var buf bytes.Buffer
	if err := net.Save(&buf); err != nil {
		t.Fatalf("Save of a network read from a file: %v", err)
	}
	saved := buf.Bytes()
	if lay.version == 2 && net.Plain() {
		// A version-2 file with no normalisation or whitening is saved
		// as version 1.
		if len(saved) != consumed-len(net.layers) {
			t.Fatalf("version-2 plain file of %d bytes saved as %d bytes", consumed, len(saved))
		}
	} else if !bytes.Equal(saved, in[:consumed]) {
		t.Fatalf("Save does not reproduce the file read:\nread  %x\nsaved %x", in[:consumed], saved)
	}
	net2, err := Read(bytes.NewReader(saved))
	if err != nil {
		t.Fatalf("Read of a saved network: %v", err)
	}
	if !slices.Equal(net.sizes, net2.sizes) {
		t.Fatalf("sizes %v read back as %v", net.sizes, net2.sizes)
	}
	for l, ly := range net.layers {
		ly2 := net2.layers[l]
		if ly.act.Name() != ly2.act.Name() || ly.Norm() != ly2.Norm() || ly.Whitened() != ly2.Whitened() {
			t.Fatalf("layer %d: %s %v whitened %v read back as %s %v whitened %v", l,
				ly.act.Name(), ly.Norm(), ly.Whitened(), ly2.act.Name(), ly2.Norm(), ly2.Whitened())
		}
	}
	if !sameBits(net.Params(nil), net2.Params(nil)) {
		t.Fatal("parameters differ after Save and Read")
	}
	if !sameExtras(extras(net), extras(net2)) {
		t.Fatal("normalisation or whitening values differ after Save and Read")
	}
	return consumed
}

// FuzzRead reads mutated network files whose checksums are recomputed, so
// that the mutations reach the parser: Read must not panic, must report a
// short file as truncated (it refuses sizes larger than the bytes left),
// and what it accepts must round-trip exactly through Save and Read.
func FuzzRead(f *testing.F) {
	valid := fuzzValidFiles(f)
	for _, s := range valid {
		f.Add(s.data)
	}
	for _, v := range []int{0, 3, 6} { // plain, batch-normalised, whitened
		for _, s := range fuzzOddFiles(valid[v].data) {
			f.Add(s.data)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkRead(t, fixCRCs(in), true)
	})
}

// FuzzReadCorrupt reads files as they are, without fixing the checksums:
// Read must not panic, every error must match ErrFormat, and a file it
// accepts must have right checksums. When data is a valid file, it also
// checks that changing its byte pos by xor is detected (CRC-32C detects
// every error burst of up to 32 bits; a change of the layer count or
// version moves the checksum, which is then missed with probability 2⁻³²
// only) and that cutting the file at pos gives a truncation error.
func FuzzReadCorrupt(f *testing.F) {
	for i, s := range fuzzValidFiles(f) {
		f.Add(s.data, uint32(i*37), byte(1<<(i%8)))
		f.Add(s.data, uint32(12), byte(0x01)) // layer count
		f.Add(s.data, uint32(len(s.data)-1), byte(0x80))
	}
	for _, s := range fuzzOddFiles(fuzzValidFiles(f)[3].data) {
		f.Add(s.data, uint32(0), byte(0xff))
	}
	f.Fuzz(func(t *testing.T, data []byte, pos uint32, xor byte) {
		n := checkRead(t, data, false)
		if n <= 0 {
			return
		}
		i := int(pos % uint32(n))
		if _, err := Read(bytes.NewReader(data[:i])); !errors.Is(err, ErrFormat) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("file cut to %d of %d bytes: error %v, want a truncation error", i, n, err)
		}
		if xor == 0 {
			return
		}
		bad := slices.Clone(data[:n])
		bad[i] ^= xor
		net, err := Read(bytes.NewReader(bad))
		if err == nil || net != nil {
			t.Fatalf("byte %d of %d changed by %#x: not detected (error %v)", i, n, xor, err)
		}
		if !errors.Is(err, ErrFormat) {
			t.Fatalf("byte %d of %d changed by %#x: error %v does not match ErrFormat", i, n, xor, err)
		}
	})
}

// TestWriteFuzzCorpus writes the seeds of FuzzRead and FuzzReadCorrupt to
// testdata/fuzz in the corpus format of go test, with -write-fuzz-corpus.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*writeFuzzCorpus {
		t.Skip("run with -write-fuzz-corpus to write the corpus")
	}
	write := func(target, name string, vals ...any) {
		var b bytes.Buffer
		b.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case uint32:
				fmt.Fprintf(&b, "uint32(%d)\n", v)
			case byte:
				fmt.Fprintf(&b, "byte(%q)\n", v)
			default:
				t.Fatalf("type %T", v)
			}
		}
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	valid := fuzzValidFiles(t)
	for i, s := range valid {
		write("FuzzRead", s.name, s.data)
		write("FuzzReadCorrupt", s.name, s.data, uint32(i*37), byte(1<<(i%8)))
	}
	for _, s := range fuzzOddFiles(valid[3].data) {
		write("FuzzRead", "odd-"+s.name, s.data)
	}
}

// TestFuzzHelpers checks the helpers of the fuzz tests against Save and
// Read: fixCRCs leaves a saved file unchanged, and every seed file reads.
func TestFuzzHelpers(t *testing.T) {
	for _, s := range fuzzValidFiles(t) {
		if !bytes.Equal(fixCRCs(s.data), s.data) {
			t.Errorf("%s: fixCRCs changes a valid file", s.name)
		}
		if n := checkRead(t, s.data, false); n != len(s.data) {
			t.Errorf("%s: read %d of %d bytes", s.name, n, len(s.data))
		}
	}
}
