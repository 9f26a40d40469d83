//go:build !linux

package kernel

import "errors"

func uname() (release, version string, err error) {
	return "", "", errors.New("uname: not supported on this OS")
}
