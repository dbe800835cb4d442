package nn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"runtime"
	"strings"
	"testing"
)

// hugeHeader returns a version-1 header with a valid checksum declaring one
// layer sizes[0] → sizes[1]: 29 bytes and no parameters.
func hugeHeader(sizes [2]uint32) []byte {
	var b []byte
	b = append(b, fileMagic...)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, sizes[0])
	b = binary.LittleEndian.AppendUint32(b, sizes[1])
	b = append(b, 0) // identity
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestReadHugeDeclaration reads the 29-byte file of the issue, declaring
// 2³¹ parameters (16 GiB): it must fail as truncated without allocating
// for the declared size.
func TestReadHugeDeclaration(t *testing.T) {
	data := hugeHeader([2]uint32{1<<24 - 1, 128})
	if len(data) != 29 {
		t.Fatalf("file is %d bytes", len(data))
	}
	// Followed by a few parameters, then the end.
	withSome := append(bytes.Clone(data), make([]byte, 8*1000+3)...)
	for _, c := range []struct {
		in   []byte
		want string
	}{
		{data, "nn: truncated file: header declares 2147483648 parameters, file ends after 0"},
		{withSome, "nn: truncated file: header declares 2147483648 parameters, file ends after 1000"},
	} {
		var err error
		n := allocated(func() { _, err = Read(bytes.NewReader(c.in)) })
		t.Logf("Read of %d bytes: allocated %d bytes, error %v", len(c.in), n, err)
		if !errors.Is(err, ErrFormat) || !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != c.want {
			t.Errorf("error %v, want %q", err, c.want)
		}
		if n > 8<<20 {
			t.Errorf("Read of %d bytes allocated %d bytes", len(c.in), n)
		}
		net := New([]int{3, 2}, []Activation{Identity{}})
		n = allocated(func() { err = net.Load(bytes.NewReader(c.in)) })
		if !errors.Is(err, ErrMismatch) || n > 1<<20 {
			t.Errorf("Load: error %v, allocated %d bytes", err, n)
		}
	}
}

// TestReadAbsurdDeclaration checks that declarations beyond the limits are
// refused before reading further.
func TestReadAbsurdDeclaration(t *testing.T) {
	for _, sizes := range [][2]uint32{
		{1 << 24, 1 << 24},       // 2⁴⁸ parameters
		{1<<24 - 1, 128 + 1},     // just over 2³¹
		{1<<24 + 1, 1},           // layer size over the limit
		{0xffffffff, 0xffffffff}, // would overflow a 32-bit product
	} {
		var err error
		n := allocated(func() { _, err = Read(bytes.NewReader(hugeHeader(sizes))) })
		if !errors.Is(err, ErrFormat) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "truncated") {
			t.Errorf("sizes %v: error %v", sizes, err)
		}
		if n > 1<<20 {
			t.Errorf("sizes %v: allocated %d bytes", sizes, n)
		}
	}
}
