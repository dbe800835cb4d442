package nn

import "fmt"

// NumParams returns the number of parameters, Σ_l n_out·(n_in+1): the
// weights and biases (V and d of whitened layers). The γ and β of
// normalised layers are not counted: they are the records' Extra
// parameters.
func (net *Network) NumParams() int {
	p := 0
	for _, l := range net.layers {
		out, in := l.w.Dims()
		p += out * (in + 1)
	}
	return p
}

// Params writes the parameters into dst as the concatenation over layers of
// θ_l = [vec(W_l); b_l], with vec stacking the columns of W_l (thesis
// eq. 3.3.1), and returns it. If dst is nil a new slice is allocated;
// otherwise len(dst) must be NumParams.
func (net *Network) Params(dst []float64) []float64 {
	dst = net.flat("Params", dst)
	net.walk(dst, func(p *float64, w *float64) { *p = *w })
	return dst
}

// SetParams sets the parameters from theta, laid out as in Params.
func (net *Network) SetParams(theta []float64) {
	if len(theta) != net.NumParams() {
		panic(fmt.Sprintf("nn: SetParams: %d values, network has %d parameters", len(theta), net.NumParams()))
	}
	net.walk(theta, func(p *float64, w *float64) { *w = *p })
}

// ParamGrads writes the gradient of the risk from the last Backward,
// [vec(GradW_l); GradB_l] for every layer, laid out as in Params, into dst
// and returns it. If dst is nil a new slice is allocated.
func (net *Network) ParamGrads(dst []float64) []float64 {
	dst = net.flat("ParamGrads", dst)
	p := 0
	for _, l := range net.layers {
		out, in := l.w.Dims()
		for c := 0; c < in; c++ {
			for r := 0; r < out; r++ {
				dst[p] = l.gradW.At(r, c)
				p++
			}
		}
		for r := 0; r < out; r++ {
			dst[p] = l.gradB.AtVec(r)
			p++
		}
	}
	return dst
}

func (net *Network) flat(op string, dst []float64) []float64 {
	np := net.NumParams()
	if dst == nil {
		return make([]float64, np)
	}
	if len(dst) != np {
		panic(fmt.Sprintf("nn: %s: len(dst) is %d, network has %d parameters", op, len(dst), np))
	}
	return dst
}

// walk calls fn(&flat[p], &param) for every parameter in Params order.
func (net *Network) walk(flat []float64, fn func(p, w *float64)) {
	p := 0
	for _, l := range net.layers {
		out, in := l.w.Dims()
		raw := l.w.RawMatrix()
		for c := 0; c < in; c++ {
			for r := 0; r < out; r++ {
				fn(&flat[p], &raw.Data[r*raw.Stride+c])
				p++
			}
		}
		b := l.b.RawVector()
		for r := 0; r < out; r++ {
			fn(&flat[p], &b.Data[r*b.Inc])
			p++
		}
	}
}
