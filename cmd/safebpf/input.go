package main

import (
	"bytes"
	"fmt"
	"io"

	"github.com/safebpf/safebpf/internal/boundedio"
	"github.com/safebpf/safebpf/internal/kernel"
	"github.com/safebpf/safebpf/probe"
)

// The files the command reads are bounded by the packages that own each
// kind (docs/security.md lists them): host files such as os-release by
// kernel.MaxFileSize, kallsyms by kernel.MaxKallsymsSize, kernel configs
// by kernel.MaxConfigSize, kernel descriptions by probe.MaxKernelJSONSize,
// ELF objects by loader.MaxObjectSize, policies by hazards; the kinds only
// the command reads by maxFleetSize (fleet.go) and maxLogSize
// (bugreport.go). Every file is opened through internal/boundedio: a FIFO,
// a device or a directory fails at once, naming its type.

// readKernelFile reads a kernel described by 'safebpf probe --json' (the
// whole report or its "kernel" object) with probe.ReadKernelJSON.
func readKernelFile(path string) (*probe.Kernel, error) {
	b, err := boundedio.ReadFile(path, probe.MaxKernelJSONSize, "kernel description")
	if err != nil {
		return nil, err
	}
	k, err := probe.ReadKernelJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// readConfig reads a kernel config, plain or gzip-compressed
// (/proc/config.gz), as the host's is read (kernel.ConfigReader).
func readConfig(path string) (string, error) {
	b, err := boundedio.ReadFile(path, kernel.MaxConfigSize, "kernel config")
	if err != nil {
		return "", err
	}
	r, err := kernel.ConfigReader(b, path)
	if err != nil {
		return "", err
	}
	text, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("read kernel config %s: %w", path, err)
	}
	return string(text), nil
}
