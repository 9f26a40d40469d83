package explain

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// Events reads records of type T from the ring buffer m until ctx ends,
// printing each as line(&record) on out, then prints "Detaching.".
func Events[T any](ctx context.Context, out io.Writer, m *ebpf.Map, line func(*T) string) error {
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		return fmt.Errorf("open ring buffer: %w", err)
	}
	defer rd.Close()
	// Closing the reader is how the read loop learns that ctx ended.
	go func() {
		<-ctx.Done()
		rd.Close()
	}()
	var ev T
	for {
		rec, err := rd.Read()
		if errors.Is(err, ringbuf.ErrClosed) {
			fmt.Fprintln(out, "Detaching.")
			return nil
		}
		if err != nil {
			return fmt.Errorf("read ring buffer: %w", err)
		}
		if err := binary.Read(bytes.NewReader(rec.RawSample), binary.NativeEndian, &ev); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		fmt.Fprintln(out, line(&ev))
	}
}

// CString returns the bytes of b up to its first NUL.
func CString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
