package nn

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The network file format, versions 1 and 2. All integers and floats are
// little-endian:
//
//	offset   size          field
//	0        8             magic "SOGO.NN\n"
//	8        uint32        format version, 1 or 2
//	12       uint32        L, the number of affine layers, 1 ≤ L ≤ 65535
//	16       (L+1)×uint32  layer sizes n_0 … n_L, each in [1, 2²⁴]
//	         L×uint8       activation ids: 0 identity, 1 sigmoid, 2 tanh,
//	                       3 relu, 4 softmax (softmax only on layer L−1)
//	         L×uint8       version 2 only: layer flags, bits 0–1 the
//	                       normalisation (0 none, 1 batch, 2 mean-only),
//	                       bit 2 set for a whitened layer, other bits zero
//	         uint32        CRC-32C (Castagnoli) of the header bytes above
//	         P×float64     the parameters in Params order: for each layer
//	                       θ_l = [vec(W_l); b_l], vec stacking the columns of
//	                       W_l (n_{l+1} × n_l); P = Σ_l n_{l+1}(n_l+1)
//	         …             version 2 only, for each layer l in order:
//	                       if normalised, ε and momentum (2 float64), then
//	                       for batch: γ, β, running mean, running variance,
//	                       for mean-only: β, running mean (n_{l+1} float64
//	                       each); then if whitened, μ (n_l float64) and U
//	                       (n_l × n_l float64, row by row)
//	         uint32        CRC-32C of all the bytes above
//
// Save writes version 1 for plain networks (Plain), so that their files
// stay readable by version-1 readers, and version 2 otherwise; Load and Read
// accept both. The training mode is not saved: Read returns a network in
// training mode. The header checksum lets a reader reject a corrupt header
// before allocating for the parameters; bytes after the final checksum are
// not read.
const (
	fileMagic   = "SOGO.NN\n"
	fileVersion = 2
	maxLayers   = 1 << 16
	maxSize     = 1 << 24
	maxParams   = 1 << 31
)

// Layer flags of the version-2 header.
const (
	flagNormMask = 0x3
	flagWhitened = 0x4
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrFormat is matched (with errors.Is) by the errors of Load and Read for
// a file that is not a valid network file: bad magic, unknown version,
// truncation, invalid header or checksum mismatch. Truncated files also
// match io.ErrUnexpectedEOF.
var ErrFormat = errors.New("nn: invalid network file")

// ErrMismatch is matched (with errors.Is) by the errors of Load for a valid
// file whose architecture differs from the network's.
var ErrMismatch = errors.New("nn: network file does not match the network")

type fileError struct {
	msg  string
	kind error
	err  error
}

func (e *fileError) Error() string { return e.msg }

func (e *fileError) Unwrap() []error {
	if e.err == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.err}
}

func formatErr(err error, format string, args ...any) error {
	return &fileError{msg: "nn: " + fmt.Sprintf(format, args...), kind: ErrFormat, err: err}
}

func mismatchErr(format string, args ...any) error {
	return &fileError{msg: "nn: " + fmt.Sprintf(format, args...), kind: ErrMismatch}
}

// Save writes the network's architecture and parameters to w in the
// versioned binary format documented above, with the normalisation
// parameters and running statistics and the whitening U, μ of its layers
// (version 2), so that Read gives back a network that computes exactly the
// same function. It returns an error if w fails or an activation is not one
// of the package's.
func (net *Network) Save(w io.Writer) error {
	ids := make([]uint8, len(net.layers))
	for l, ly := range net.layers {
		id, ok := activationID(ly.act)
		if !ok {
			return fmt.Errorf("nn: Save: layer %d activation %q has no file id", l, ly.act.Name())
		}
		ids[l] = id
	}
	version := uint32(1)
	if !net.Plain() {
		version = 2
	}
	hdr := make([]byte, 0, 16+4*len(net.sizes)+2*len(ids)+4)
	hdr = append(hdr, fileMagic...)
	hdr = binary.LittleEndian.AppendUint32(hdr, version)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(net.layers)))
	for _, s := range net.sizes {
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(s))
	}
	hdr = append(hdr, ids...)
	if version == 2 {
		for _, ly := range net.layers {
			f := uint8(ly.Norm())
			if ly.wh != nil {
				f |= flagWhitened
			}
			hdr = append(hdr, f)
		}
	}
	hdr = binary.LittleEndian.AppendUint32(hdr, crc32.Checksum(hdr, crcTable))

	sum := crc32.New(crcTable)
	mw := io.MultiWriter(w, sum)
	if _, err := mw.Write(hdr); err != nil {
		return fmt.Errorf("nn: Save: %w", err)
	}
	buf := make([]byte, 0, 8*4096)
	write := func(v []float64) error {
		for len(v) > 0 {
			c := min(len(v), 4096)
			buf = buf[:0]
			for _, x := range v[:c] {
				buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(x))
			}
			if _, err := mw.Write(buf); err != nil {
				return fmt.Errorf("nn: Save: %w", err)
			}
			v = v[c:]
		}
		return nil
	}
	if err := write(net.Params(nil)); err != nil {
		return err
	}
	if version == 2 {
		for _, ly := range net.layers {
			for _, v := range ly.extraValues() {
				if err := write(v); err != nil {
					return err
				}
			}
		}
	}
	if _, err := w.Write(binary.LittleEndian.AppendUint32(nil, sum.Sum32())); err != nil {
		return fmt.Errorf("nn: Save: %w", err)
	}
	return nil
}

// extraValues returns the layer's values saved after the parameters in
// version 2, in file order, aliasing the layer's storage except for the
// first slice of a normalised layer, a copy of ε and the momentum.
func (l *Affine) extraValues() [][]float64 {
	var v [][]float64
	if s := l.norm; s != nil {
		v = append(v, []float64{s.eps, s.momentum})
		if s.kind == BatchNorm {
			v = append(v, s.gamma.RawVector().Data)
		}
		v = append(v, s.beta.RawVector().Data, s.runMean.RawVector().Data)
		if s.kind == BatchNorm {
			v = append(v, s.runVar.RawVector().Data)
		}
	}
	if w := l.wh; w != nil {
		raw := w.u.RawMatrix()
		v = append(v, w.mu.RawVector().Data, raw.Data[:raw.Rows*raw.Stride])
	}
	return v
}

// numExtra returns the number of version-2 values after the parameters of
// a layer n_in → n_out with the given flags.
func numExtra(in, out int, flags uint8) int {
	n := 0
	switch Norm(flags & flagNormMask) {
	case BatchNorm:
		n += 2 + 4*out
	case MeanOnlyBatchNorm:
		n += 2 + 2*out
	}
	if flags&flagWhitened != 0 {
		n += in + in*in
	}
	return n
}

// header is the architecture read from a file.
type header struct {
	sizes []int
	acts  []Activation
	flags []uint8 // per layer (zeros for version 1)
}

// fileReader reads from r, accumulating the checksum of what it read.
type fileReader struct {
	r   io.Reader
	sum hash.Hash32
}

func (f *fileReader) read(what string, b []byte) error {
	if _, err := io.ReadFull(f.r, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return formatErr(io.ErrUnexpectedEOF, "truncated file: reading %s", what)
		}
		return fmt.Errorf("nn: reading %s: %w", what, err)
	}
	f.sum.Write(b)
	return nil
}

func readHeader(f *fileReader) (header, error) {
	var h header
	b := make([]byte, 16)
	if err := f.read("header", b); err != nil {
		return h, err
	}
	if string(b[:8]) != fileMagic {
		return h, formatErr(nil, "not a network file: bad magic %q", b[:8])
	}
	version := binary.LittleEndian.Uint32(b[8:])
	if version != 1 && version != 2 {
		return h, formatErr(nil, "unsupported network file version %d, want 1 or %d", version, fileVersion)
	}
	nl := binary.LittleEndian.Uint32(b[12:])
	if nl == 0 || nl > maxLayers {
		return h, formatErr(nil, "invalid layer count %d in file header", nl)
	}
	nflags := uint32(0)
	if version == 2 {
		nflags = nl
	}
	rest := make([]byte, 4*(nl+1)+nl+nflags+4)
	if err := f.read("header", rest); err != nil {
		return h, err
	}
	want := crc32.Checksum(b, crcTable)
	want = crc32.Update(want, crcTable, rest[:len(rest)-4])
	if got := binary.LittleEndian.Uint32(rest[len(rest)-4:]); got != want {
		return h, formatErr(nil, "header checksum mismatch: file is corrupt")
	}
	h.sizes = make([]int, nl+1)
	// The declared count, in uint64 so that no product or sum overflows
	// (each term is below 2⁴⁹, and the sum is checked after each term).
	params := uint64(0)
	for l := range h.sizes {
		s := binary.LittleEndian.Uint32(rest[4*l:])
		if s == 0 || s > maxSize {
			return h, formatErr(nil, "invalid layer size %d at position %d in file header", s, l)
		}
		h.sizes[l] = int(s)
	}
	h.flags = make([]uint8, nl)
	copy(h.flags, rest[4*(nl+1)+nl:len(rest)-4])
	for l, f := range h.flags {
		if f&^(flagNormMask|flagWhitened) != 0 || !Norm(f&flagNormMask).valid() {
			return h, formatErr(nil, "invalid flags %#x for layer %d in file header", f, l)
		}
		in, out := uint64(h.sizes[l]), uint64(h.sizes[l+1])
		params += out * (in + 1)
		if Norm(f&flagNormMask) != NoNorm {
			params += 2 + 4*out
		}
		if f&flagWhitened != 0 {
			params += in + in*in
		}
		if params > maxParams || params > math.MaxInt/8 {
			return h, formatErr(nil, "file declares more than %d parameters", maxParams)
		}
	}
	ids := rest[4*(nl+1) : 4*(nl+1)+nl]
	h.acts = make([]Activation, nl)
	for l, id := range ids {
		act, ok := activationFromID(id)
		if !ok {
			return h, formatErr(nil, "unknown activation id %d for layer %d in file header", id, l)
		}
		if _, sm := act.(Softmax); sm && l != len(ids)-1 {
			return h, formatErr(nil, "softmax on hidden layer %d in file header", l)
		}
		h.acts[l] = act
	}
	return h, nil
}

// readChunk is the number of float64 values, 1 MiB, that readParams reads
// at a time.
const readChunk = 1 << 17

// readParams reads the parameters θ, the version-2 values of every layer
// (extra[l], in the order of Affine.extraValues) and the final checksum.
//
// The sizes come from a header that may lie: a 29-byte file can declare 2³¹
// parameters. So nothing is allocated for values not yet read: the values
// are read in chunks of readChunk, and the slices grow (at most doubling,
// never beyond the declared size) as the data arrive. A file that ends
// early costs about its own size plus one chunk.
func readParams(f *fileReader, h header) (theta []float64, extra [][]float64, err error) {
	sizes := h.sizes
	nTheta := numParams(sizes)
	nExtra := 0
	for l, fl := range h.flags {
		nExtra += numExtra(sizes[l], sizes[l+1], fl)
	}
	buf := make([]byte, 8*min(nTheta+nExtra, readChunk))
	// read appends n values to dst; total is the number of values dst is
	// declared to hold in the end, and what names them in errors.
	read := func(dst []float64, n, total int, what string) ([]float64, error) {
		for n > 0 {
			c := min(n, readChunk)
			b := buf[:8*c]
			if m, err := io.ReadFull(f.r, b); err != nil {
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					return nil, formatErr(io.ErrUnexpectedEOF, "truncated file: header declares %d %s, file ends after %d", total, what, len(dst)+m/8)
				}
				return nil, fmt.Errorf("nn: reading %s: %w", what, err)
			}
			f.sum.Write(b)
			if len(dst)+c > cap(dst) {
				grown := make([]float64, len(dst), min(total, max(2*cap(dst), len(dst)+c)))
				copy(grown, dst)
				dst = grown
			}
			for j := 0; j < c; j++ {
				dst = append(dst, math.Float64frombits(binary.LittleEndian.Uint64(b[8*j:])))
			}
			n -= c
		}
		return dst, nil
	}
	theta, err = read(nil, nTheta, nTheta, "parameters")
	if err != nil {
		return nil, nil, err
	}
	extra = make([][]float64, len(h.flags))
	for l, fl := range h.flags {
		if n := numExtra(sizes[l], sizes[l+1], fl); n > 0 {
			if extra[l], err = read(nil, n, n, fmt.Sprintf("normalisation and whitening values for layer %d", l)); err != nil {
				return nil, nil, err
			}
		}
	}
	want := f.sum.Sum32()
	b := make([]byte, 4)
	if err := f.read("checksum", b); err != nil {
		return nil, nil, err
	}
	if binary.LittleEndian.Uint32(b) != want {
		return nil, nil, formatErr(nil, "checksum mismatch: file is corrupt")
	}
	for l, fl := range h.flags {
		if Norm(fl&flagNormMask) == NoNorm {
			continue
		}
		eps, m := extra[l][0], extra[l][1]
		if !(eps > 0) || math.IsInf(eps, 0) || !(m > 0 && m <= 1) {
			return nil, nil, formatErr(nil, "layer %d: invalid normalisation ε %v or momentum %v", l, eps, m)
		}
	}
	return theta, extra, nil
}

func numParams(sizes []int) int {
	p := 0
	for l := 1; l < len(sizes); l++ {
		p += sizes[l] * (sizes[l-1] + 1)
	}
	return p
}

// setExtra sets the layer's version-2 values from the file order.
func (l *Affine) setExtra(v []float64) {
	if l.norm != nil {
		l.norm.eps, l.norm.momentum = v[0], v[1]
	}
	for _, dst := range l.extraValues() {
		copy(dst, v[:len(dst)])
		v = v[len(dst):]
	}
	if l.wh != nil {
		l.wh.setUMu()
	}
}

// Load reads parameters saved by Save into the network. The file must have
// the network's architecture, including the normalisation and whitening of
// every layer (a version-1 file has neither); otherwise Load returns an error matching
// ErrMismatch that names the first difference, e.g.
// "nn: layer 3 weights are 250×500 in file, network has 30×250". A
// truncated or corrupt file gives an error matching ErrFormat. On error the
// network is unchanged.
func (net *Network) Load(r io.Reader) error {
	f := &fileReader{r: r, sum: crc32.New(crcTable)}
	h, err := readHeader(f)
	if err != nil {
		return err
	}
	if len(h.acts) != len(net.layers) {
		return mismatchErr("file has %d layers, network has %d", len(h.acts), len(net.layers))
	}
	if h.sizes[0] != net.sizes[0] {
		return mismatchErr("input size is %d in file, network has %d", h.sizes[0], net.sizes[0])
	}
	for l, ly := range net.layers {
		out, in := ly.w.Dims()
		if h.sizes[l+1] != out || h.sizes[l] != in {
			return mismatchErr("layer %d weights are %d×%d in file, network has %d×%d", l, h.sizes[l+1], h.sizes[l], out, in)
		}
		if h.acts[l].Name() != ly.act.Name() {
			return mismatchErr("layer %d activation is %s in file, network has %s", l, h.acts[l].Name(), ly.act.Name())
		}
		if fn := Norm(h.flags[l] & flagNormMask); fn != ly.Norm() {
			return mismatchErr("layer %d normalisation is %s in file, network has %s", l, fn, ly.Norm())
		}
		if fw := h.flags[l]&flagWhitened != 0; fw != ly.Whitened() {
			return mismatchErr("layer %d whitening is %s in file, network has %s", l, onOff(fw), onOff(ly.Whitened()))
		}
	}
	theta, extra, err := readParams(f, h)
	if err != nil {
		return err
	}
	net.SetParams(theta)
	for l, ly := range net.layers {
		ly.setExtra(extra[l])
	}
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Read constructs a network from a file written by Save, with the file's
// architecture and parameters. A truncated or corrupt file gives an error
// matching ErrFormat.
func Read(r io.Reader) (*Network, error) {
	f := &fileReader{r: r, sum: crc32.New(crcTable)}
	h, err := readHeader(f)
	if err != nil {
		return nil, err
	}
	theta, extra, err := readParams(f, h)
	if err != nil {
		return nil, err
	}
	net := New(h.sizes, h.acts)
	for l, fl := range h.flags {
		if k := Norm(fl & flagNormMask); k != NoNorm {
			net.SetNorm(l, k)
		}
		if fl&flagWhitened != 0 {
			net.SetWhitened(l, true)
		}
	}
	net.SetParams(theta)
	for l, ly := range net.layers {
		ly.setExtra(extra[l])
	}
	return net, nil
}

// SaveFile saves the network to the named file, atomically and durably:
// it writes a temporary file "."+base+".tmp-"+random in the same directory
// (base the file's name), syncs it to disk, closes it, renames it over the
// file and syncs the directory, so that the file is either the old one or
// the complete new one, even after a crash or a power loss. On error the
// temporary file is removed. The file is created with mode 0666 less the
// umask, like os.Create (not os.CreateTemp's 0600); an existing file is
// replaced, not rewritten, so its mode is not kept.
//
// A process killed during SaveFile leaves its temporary file behind. Before
// writing, SaveFile removes the temporaries of the same file older than
// staleTemp (one hour), and those named "base.tmpNNN" left by earlier
// versions of SaveFile. It does not remove younger ones: without a lock on
// the name, a younger temporary may belong to a save in progress in
// another process, and removing it would make that save fail.
func (net *Network) SaveFile(path string) (err error) {
	removeStaleTemps(path, time.Now().Add(-staleTemp))
	tmp, err := createTemp(path)
	if err != nil {
		return fmt.Errorf("nn: SaveFile: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriter(saveFileWriter(tmp))
	if err = net.Save(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("nn: SaveFile: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("nn: SaveFile: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("nn: SaveFile: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("nn: SaveFile: %w", err)
	}
	// The file is in place; an error now only says that the rename may
	// not be durable yet.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("nn: SaveFile: %s saved, but syncing its directory: %w", path, err)
	}
	return nil
}

// staleTemp is the age beyond which SaveFile removes a temporary file left
// by an interrupted save of the same file.
const staleTemp = time.Hour

// saveFileWriter returns the writer SaveFile writes the temporary file
// through; tests replace it to inject write errors.
var saveFileWriter = func(f *os.File) io.Writer { return f }

// tempPrefix returns the prefix of the names of the temporaries of path.
func tempPrefix(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
}

// createTemp creates a new temporary file for path with mode 0666 less the
// umask.
func createTemp(path string) (*os.File, error) {
	prefix := tempPrefix(path)
	for try := 0; ; try++ {
		name := prefix + strconv.FormatUint(rand.Uint64(), 36)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) && try < 100 {
			continue
		}
		return f, err
	}
}

// removeStaleTemps removes the regular files named like the temporaries of
// path, ".base.tmp-*", or like those of the earlier versions of SaveFile,
// "base.tmp" followed by 1 to 10 decimal digits (os.CreateTemp's suffix),
// last modified before cutoff. Errors are ignored: the cleanup is a
// courtesy, not part of the save.
func removeStaleTemps(path string, cutoff time.Time) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "."+base+".tmp-") && !isLegacyTemp(name, base) {
			continue
		}
		if !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			os.Remove(filepath.Join(dir, name))
		}
	}
}

func isLegacyTemp(name, base string) bool {
	digits, ok := strings.CutPrefix(name, base+".tmp")
	if !ok || len(digits) == 0 || len(digits) > 10 {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// syncDir syncs the directory, so that a rename in it is durable. It
// returns nil where directories cannot be synced (Windows, and file systems
// that reject fsync on a directory with EINVAL or ENOTSUP).
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// LoadFile loads the network's parameters from the named file (see Load).
func (net *Network) LoadFile(path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("nn: LoadFile: %w", err)
	}
	defer fh.Close()
	if err := net.Load(bufio.NewReader(fh)); err != nil {
		return fmt.Errorf("%w (file %s)", err, path)
	}
	return nil
}

// ReadFile constructs a network from the named file (see Read).
func ReadFile(path string) (*Network, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("nn: ReadFile: %w", err)
	}
	defer fh.Close()
	net, err := Read(bufio.NewReader(fh))
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return net, nil
}
