package datasets

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// IDX element types, the third byte of the magic number.
const (
	IDXUint8   = 0x08 // unsigned byte
	IDXInt8    = 0x09 // signed byte
	IDXInt16   = 0x0B // big-endian int16
	IDXInt32   = 0x0C // big-endian int32
	IDXFloat32 = 0x0D // big-endian float32
	IDXFloat64 = 0x0E // big-endian float64
)

// MaxIDXDims is the largest number of dimensions ReadIDX accepts.
const MaxIDXDims = 16

// MaxIDXSize is the largest number of elements ReadIDX accepts, 1 GiB of
// unsigned bytes. It guards against a header that announces an absurd size;
// the largest MNIST file holds 47,040,000 elements.
const MaxIDXSize = 1 << 30

// ErrIDXFormat is wrapped by every error that ReadIDX and ReadIDXFile return
// for malformed data: a bad magic number, bad dimensions, a truncated or
// overlong file or a corrupt gzip stream. Test for it with errors.Is.
var ErrIDXFormat = errors.New("malformed IDX data")

// IDX is the content of an IDX file, the format of the MNIST files
// (http://yann.lecun.com/exdb/mnist/). An IDX file is
//
//	magic   4 bytes: 0x00 0x00 type ndims
//	dims    ndims big-endian uint32, the size of each dimension
//	data    the elements in row-major order (the last dimension varies fastest)
//
// Only the type IDXUint8 (unsigned byte) is supported. An IDX is safe for
// concurrent use by multiple goroutines as long as none modifies it.
type IDX struct {
	// Type is the element type code from the magic number (IDXUint8).
	Type byte
	// Dims are the sizes of the dimensions, each at least 1.
	Dims []int
	// Data are the elements in row-major order; len(Data) is the product
	// of Dims.
	Data []byte
}

// Len returns the number of elements, the product of x.Dims.
func (x *IDX) Len() int {
	n := 1
	for _, d := range x.Dims {
		n *= d
	}
	return n
}

// ReadIDX reads an IDX file from r, raw or gzip-compressed (recognised by
// the gzip magic bytes 1f 8b). It validates the header and requires the
// data to be exactly as long as the header says: a truncated file, trailing
// bytes after the data, an unsupported element type, zero or too many
// dimensions, a zero dimension or more than MaxIDXSize elements are
// reported as errors wrapping ErrIDXFormat.
//
// ReadIDX never allocates much more than the data actually read, whatever
// size the header announces.
func ReadIDX(r io.Reader) (*IDX, error) {
	return readIDX(r, "")
}

// ReadIDXFile reads the IDX file at path, raw or gzip-compressed, as
// ReadIDX does. Its errors name the file.
func ReadIDXFile(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("datasets: %w", err)
	}
	defer f.Close()
	return readIDX(f, path)
}

// idxError returns a format error about the IDX data read from name ("" for
// an anonymous reader). A non-nil cause is wrapped as well.
func idxError(name string, cause error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	where := "datasets: "
	if name != "" {
		where = "datasets: " + name + ": "
	}
	if cause != nil {
		return fmt.Errorf("%s%w: %s: %w", where, ErrIDXFormat, msg, cause)
	}
	return fmt.Errorf("%s%w: %s", where, ErrIDXFormat, msg)
}

// idxChunk is the most ReadIDX reads at a time, 1 MiB.
const idxChunk = 1 << 20

// idxReader reads an IDX file whose header has been read and validated.
type idxReader struct {
	name string
	br   *bufio.Reader
	src  io.Reader    // br, or zr for a gzip file
	zr   *gzip.Reader // nil for a raw file
	typ  byte
	dims []int
	size int // the product of dims, at most MaxIDXSize
}

func readIDX(r io.Reader, name string) (*IDX, error) {
	x, err := openIDX(r, name)
	if err != nil {
		return nil, err
	}
	var data []byte
	if err := x.readData(func(p []byte) { data = append(grow(data, len(p), x.size), p...) }); err != nil {
		return nil, err
	}
	return &IDX{Type: x.typ, Dims: x.dims, Data: data}, nil
}

// openIDX reads and validates the magic number and the dimensions.
func openIDX(r io.Reader, name string) (*idxReader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	x := &idxReader{name: name, br: br, src: br}
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, idxError(name, err, "bad gzip header")
		}
		// One gzip member holds one IDX file: bytes after it are an error.
		zr.Multistream(false)
		x.zr, x.src = zr, zr
	}
	src := x.src

	var magic [4]byte
	if n, err := io.ReadFull(src, magic[:]); err != nil {
		return nil, idxError(name, ioCause(err), "truncated magic number: got %d of 4 bytes", n)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, idxError(name, nil, "bad magic number % x: want 00 00 <type> <ndims>", magic[:])
	}
	typ, ndims := magic[2], int(magic[3])
	if typ != IDXUint8 {
		return nil, idxError(name, nil, "unsupported element type 0x%02x (%s): only 0x08 (unsigned byte) is supported", typ, idxTypeName(typ))
	}
	if ndims < 1 || ndims > MaxIDXDims {
		return nil, idxError(name, nil, "%d dimensions: want 1 to %d", ndims, MaxIDXDims)
	}

	hdr := make([]byte, 4*ndims)
	if n, err := io.ReadFull(src, hdr); err != nil {
		return nil, idxError(name, ioCause(err), "truncated header: got %d of %d bytes of dimension sizes", n, len(hdr))
	}
	dims := make([]int, ndims)
	size := 1
	for i := range dims {
		d := binary.BigEndian.Uint32(hdr[4*i:])
		if d == 0 {
			return nil, idxError(name, nil, "dimension %d has size 0 in %s", i, fmtDims(hdr))
		}
		// size ≤ MaxIDXSize, so neither the division nor the product
		// can overflow, even with a 32-bit int.
		if uint64(d) > uint64(MaxIDXSize/size) {
			return nil, idxError(name, nil, "dimensions %s exceed the limit of %d elements", fmtDims(hdr), MaxIDXSize)
		}
		dims[i] = int(d)
		size *= int(d)
	}
	x.typ, x.dims, x.size = typ, dims, size
	return x, nil
}

// readData reads the x.size data bytes in chunks of at most idxChunk,
// passing each to use (which must not keep it), then checks that the data
// end there. It allocates one chunk, whatever size the header declares:
// use decides what to keep.
func (x *idxReader) readData(use func(p []byte)) error {
	name, src, size := x.name, x.src, x.size
	buf := make([]byte, min(size, idxChunk))
	for got := 0; got < size; {
		c := min(size-got, idxChunk)
		m, err := io.ReadFull(src, buf[:c])
		if err != nil {
			return idxError(name, ioCause(err), "truncated data: header %v wants %d bytes, got %d", x.dims, size, got+m)
		}
		use(buf[:c])
		got += c
	}
	// The data must end here: no further IDX bytes and, for gzip, the end of
	// the member with a good checksum and nothing after it.
	var one [1]byte
	if n, err := io.ReadFull(src, one[:]); n > 0 {
		extra, _ := io.Copy(io.Discard, io.LimitReader(src, 1<<20))
		return idxError(name, nil, "trailing data: header %v wants %d bytes, got %s", x.dims, size, moreBytes(size, 1+extra, 1<<20+1))
	} else if err == io.ErrUnexpectedEOF {
		return idxError(name, nil, "gzip stream truncated after the %d data bytes", size)
	} else if err != io.EOF {
		return idxError(name, err, "after the %d data bytes", size)
	}
	if x.zr != nil {
		if n, _ := io.Copy(io.Discard, io.LimitReader(x.br, 1<<20)); n > 0 {
			return idxError(name, nil, "trailing data after the gzip stream: %s", moreBytes(0, n, 1<<20))
		}
	}
	return nil
}

// grow returns s with room for n more elements, growing its capacity at
// least twofold when it must grow but not beyond total, the size the
// header declares: the allocations follow the data read, not the declared
// size.
func grow[T any](s []T, n, total int) []T {
	if len(s)+n <= cap(s) {
		return s
	}
	grown := make([]T, len(s), max(len(s)+n, min(total, 2*cap(s))))
	copy(grown, s)
	return grown
}

// ioCause returns err unless it only says that the input ended early, which
// the caller's message already says.
func ioCause(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil
	}
	return err
}

// moreBytes formats base+n bytes, n counted up to limit.
func moreBytes(base int, n, limit int64) string {
	if n >= limit {
		return fmt.Sprintf("more than %d bytes", int64(base)+limit-1)
	}
	return fmt.Sprintf("%d bytes", int64(base)+n)
}

func fmtDims(b []byte) string {
	var s []string
	for i := 0; i+4 <= len(b); i += 4 {
		s = append(s, fmt.Sprint(binary.BigEndian.Uint32(b[i:])))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func idxTypeName(t byte) string {
	switch t {
	case IDXUint8:
		return "unsigned byte"
	case IDXInt8:
		return "signed byte"
	case IDXInt16:
		return "int16"
	case IDXInt32:
		return "int32"
	case IDXFloat32:
		return "float32"
	case IDXFloat64:
		return "float64"
	}
	return "unknown type"
}
