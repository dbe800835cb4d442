package datasets

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// makeIDX encodes an IDX file of the given type and dimensions.
func makeIDX(typ byte, dims []int, data []byte) []byte {
	b := []byte{0, 0, typ, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	return append(b, data...)
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func TestReadIDX(t *testing.T) {
	valid := makeIDX(IDXUint8, []int{2, 3}, seq(6))
	validGz := gzipBytes(valid)
	badChecksum := slices.Clone(validGz)
	badChecksum[len(badChecksum)-8] ^= 0xff // CRC-32 in the gzip trailer

	for _, tc := range []struct {
		name    string
		in      []byte
		dims    []int
		errLike string // substring of the error, "" for success
	}{
		{name: "raw 2-D", in: valid, dims: []int{2, 3}},
		{name: "gzip 2-D", in: validGz, dims: []int{2, 3}},
		{name: "raw 1-D", in: makeIDX(IDXUint8, []int{5}, seq(5)), dims: []int{5}},
		{name: "raw 3-D", in: makeIDX(IDXUint8, []int{2, 2, 2}, seq(8)), dims: []int{2, 2, 2}},
		{name: "empty", in: nil, errLike: "truncated magic number: got 0 of 4 bytes"},
		{name: "short magic", in: []byte{0, 0, 8}, errLike: "truncated magic number"},
		{name: "bad magic", in: append([]byte{1}, valid[1:]...), errLike: "bad magic number 01 00 08 02"},
		{name: "unsupported type", in: makeIDX(IDXFloat32, []int{2}, seq(8)), errLike: "unsupported element type 0x0d (float32)"},
		{name: "unknown type", in: makeIDX(0x42, []int{2}, seq(2)), errLike: "unsupported element type 0x42"},
		{name: "no dims", in: makeIDX(IDXUint8, nil, nil), errLike: "0 dimensions"},
		{name: "too many dims", in: makeIDX(IDXUint8, make([]int, MaxIDXDims+1), nil), errLike: "17 dimensions"},
		{name: "zero dim", in: makeIDX(IDXUint8, []int{3, 0}, nil), errLike: "dimension 1 has size 0"},
		{name: "huge dims", in: makeIDX(IDXUint8, []int{1 << 16, 1 << 16}, seq(10)), errLike: "exceed the limit"},
		{name: "huge dims overflow", in: makeIDX(IDXUint8, []int{1<<32 - 1, 1<<32 - 1, 1<<32 - 1}, nil), errLike: "exceed the limit"},
		{name: "truncated header", in: valid[:9], errLike: "truncated header: got 5 of 8 bytes"},
		{name: "truncated data", in: valid[:len(valid)-3], errLike: "wants 6 bytes, got 3"},
		{name: "large header, little data", in: makeIDX(IDXUint8, []int{60000, 28, 28}, seq(100)), errLike: "wants 47040000 bytes, got 100"},
		{name: "trailing data", in: append(slices.Clone(valid), 1, 2), errLike: "trailing data: header [2 3] wants 6 bytes, got 8 bytes"},
		{name: "gzip truncated data", in: gzipBytes(valid[:len(valid)-1]), errLike: "wants 6 bytes, got 5"},
		{name: "gzip trailing data inside", in: gzipBytes(append(slices.Clone(valid), 9)), errLike: "trailing data"},
		{name: "gzip trailing garbage after", in: append(slices.Clone(validGz), 'x', 'y'), errLike: "trailing data after the gzip stream: 2 bytes"},
		{name: "gzip cut short", in: validGz[:len(validGz)-4], errLike: "gzip stream truncated after the 6 data bytes"},
		{name: "gzip bad checksum", in: badChecksum, errLike: "checksum"},
		{name: "gzip bad header", in: []byte{0x1f, 0x8b, 0, 0}, errLike: "bad gzip header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadIDX(bytes.NewReader(tc.in))
			if tc.errLike != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tc.errLike)
				}
				t.Log(err)
				if !strings.Contains(err.Error(), tc.errLike) {
					t.Errorf("error %q does not contain %q", err, tc.errLike)
				}
				if !errors.Is(err, ErrIDXFormat) {
					t.Errorf("error %q does not wrap ErrIDXFormat", err)
				}
				if !strings.HasPrefix(err.Error(), "datasets: ") {
					t.Errorf("error %q lacks the package prefix", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != IDXUint8 || !slices.Equal(got.Dims, tc.dims) {
				t.Errorf("type %#x dims %v, want 0x08 %v", got.Type, got.Dims, tc.dims)
			}
			if !slices.Equal(got.Data, seq(got.Len())) {
				t.Errorf("data %v, want %v", got.Data, seq(got.Len()))
			}
		})
	}
}

func TestReadIDXFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.gz")
	bad := filepath.Join(dir, "bad")
	os.WriteFile(good, gzipBytes(makeIDX(IDXUint8, []int{4}, seq(4))), 0o644)
	os.WriteFile(bad, makeIDX(IDXUint8, []int{4}, seq(3)), 0o644)

	x, err := ReadIDXFile(good)
	if err != nil || !slices.Equal(x.Data, seq(4)) {
		t.Fatalf("ReadIDXFile(%s) = %v, %v", good, x, err)
	}
	_, err = ReadIDXFile(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "wants 4 bytes, got 3") {
		t.Errorf("error %q does not name %s and the sizes", err, bad)
	}
	missing := filepath.Join(dir, "missing")
	_, err = ReadIDXFile(missing)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q for a missing file", err)
	}
}

// TestReadIDXLargeGrowth checks a file larger than the first read chunk,
// which exercises the growth of the data slice.
func TestReadIDXLargeGrowth(t *testing.T) {
	data := seq(5<<20 + 17)
	for _, in := range [][]byte{makeIDX(IDXUint8, []int{len(data)}, data), gzipBytes(makeIDX(IDXUint8, []int{len(data)}, data))} {
		x, err := ReadIDX(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x.Data, data) {
			t.Fatal("data differ")
		}
	}
}

func FuzzReadIDX(f *testing.F) {
	valid := makeIDX(IDXUint8, []int{2, 3}, seq(6))
	seeds := [][]byte{
		valid,
		gzipBytes(valid),
		makeIDX(IDXUint8, []int{4}, seq(4)),
		makeIDX(IDXUint8, []int{2, 2, 2}, seq(8)),
		gzipBytes(makeIDX(IDXUint8, []int{3, 28, 28}, seq(3*28*28))),
		valid[:len(valid)-2],                         // truncated data
		valid[:7],                                    // truncated header
		append(slices.Clone(valid), 0xff),            // trailing data
		append([]byte{0, 1}, valid[2:]...),           // wrong magic
		makeIDX(IDXFloat64, []int{1}, seq(8)),        // unsupported type
		makeIDX(IDXUint8, []int{60000, 28, 28}, nil), // header only
		gzipBytes(valid[:len(valid)-1]),
		append(gzipBytes(valid), 0x1f, 0x8b),
		nil,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := ReadIDX(bytes.NewReader(in))
		if err != nil {
			if x != nil {
				t.Fatalf("non-nil result with error %v", err)
			}
			if !errors.Is(err, ErrIDXFormat) {
				t.Fatalf("error %v does not wrap ErrIDXFormat", err)
			}
			return
		}
		n := 1
		for _, d := range x.Dims {
			if d <= 0 {
				t.Fatalf("dims %v", x.Dims)
			}
			n *= d
		}
		if len(x.Data) != n || n > MaxIDXSize {
			t.Fatalf("dims %v, product %d, data length %d", x.Dims, n, len(x.Data))
		}
	})
}

// TestReadIDXHugeCount reads a small gzip file whose header declares 1 GiB
// of data: the error must come without allocating for the declared size.
func TestReadIDXHugeCount(t *testing.T) {
	in := gzipBytes(makeIDX(IDXUint8, []int{1_369_000, 28, 28}, make([]byte, 5000)))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ReadIDX(bytes.NewReader(in))
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d-byte file: allocated %d bytes, error %v", len(in), alloc, err)
	if !errors.Is(err, ErrIDXFormat) || !strings.Contains(err.Error(), "header [1369000 28 28] wants 1073296000 bytes, got 5000") {
		t.Errorf("error %v", err)
	}
	if alloc > 4<<20 {
		t.Errorf("allocated %d bytes", alloc)
	}
}
