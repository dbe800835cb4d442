module github.com/secondorder/secondorder/interop/gomlx

go 1.26.0

require (
	github.com/gomlx/gomlx v0.26.0
	github.com/secondorder/secondorder v0.0.0
	gonum.org/v1/gonum v0.17.0
)

require (
	github.com/dustin/go-humanize v1.0.1 // indirect
	github.com/ebitengine/purego v0.11.3 // indirect
	github.com/go-logr/logr v1.4.3 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/x448/float16 v0.8.4 // indirect
	golang.org/x/exp v0.0.0-20261113113407-e3970619a1a4 // indirect
	gonum.org/v1/netlib v0.0.0-20190313105609-8cb42192e0e0 // indirect
	k8s.io/klog/v2 v2.130.1 // indirect
)

replace github.com/secondorder/secondorder => ../..
