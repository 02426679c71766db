package sharding

// twemproxy's FNV variants. All of them read key bytes as signed chars. The "_64" ones
// return only the low 32 bits, which depend only on the low 32 bits of the 64-bit offset
// basis and prime, so they are computed in 32 bits; fnv1a_64 is 32-bit in twemproxy itself.
const (
	fnv64OffsetLow = 0x84222325 // low 32 bits of 0xcbf29ce484222325
	fnv64PrimeLow  = 0x000001b3 // low 32 bits of 0x100000001b3
	fnv32Offset    = 2166136261
	fnv32Prime     = 16777619
)

func hashFNV1_64(key []byte) uint32 {
	h := uint32(fnv64OffsetLow)
	for _, b := range key {
		h *= fnv64PrimeLow
		h ^= signExtend(b)
	}
	return h
}

func hashFNV1a_64(key []byte) uint32 {
	h := uint32(fnv64OffsetLow)
	for _, b := range key {
		h ^= signExtend(b)
		h *= fnv64PrimeLow
	}
	return h
}

func hashFNV1_32(key []byte) uint32 {
	h := uint32(fnv32Offset)
	for _, b := range key {
		h *= fnv32Prime
		h ^= signExtend(b)
	}
	return h
}

func hashFNV1a_32(key []byte) uint32 {
	h := uint32(fnv32Offset)
	for _, b := range key {
		h ^= signExtend(b)
		h *= fnv32Prime
	}
	return h
}
