package tracefs

import "hash/fnv"

// TokenFile is the tracefs file whose byte-range locks prove that an
// event's owner still runs. tracefs has one superblock whatever the number
// of mounts (containers mount or bind-mount the same one), so a lock taken
// on it in one PID namespace is seen from every other; and the kernel
// drops an open file description's locks when its last descriptor closes,
// which SIGKILL does too.
const TokenFile = "README"

// tokenOffset is the byte an owner locks: a hash of its identity. Two
// owners with the same hash make each other look alive, never dead.
func tokenOffset(o Owner) int64 {
	h := fnv.New64a()
	h.Write([]byte(o.id(0)))
	return int64(h.Sum64() & (1<<62 - 1))
}
