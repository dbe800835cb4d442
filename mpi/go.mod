module github.com/secondorder/secondorder/mpi

go 1.26.0

require (
	github.com/secondorder/secondorder v0.0.0
	gonum.org/v1/gonum v0.17.0
)

require (
	github.com/ebitengine/purego v0.11.3 // indirect
	gonum.org/v1/netlib v0.0.0-20190313105609-8cb42192e0e0 // indirect
)

replace github.com/secondorder/secondorder => ../
