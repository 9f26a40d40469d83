//go:build unix

package boundedio

import (
	"os"
	"syscall"
)

// openNonblock opens path read-only with O_NONBLOCK (a FIFO without writer
// or a device opens at once instead of waiting) and O_NOCTTY.
func openNonblock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}
