package sharding

import "hash/crc32"

// crc16Table is the MSB-first table of CRC-16/XMODEM (polynomial 0x1021).
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// hashCRC16 is twemproxy's crc16: CRC-16/XMODEM steps on a 32-bit register that is never
// masked to 16 bits, so the result has bits above bit 15.
func hashCRC16(key []byte) uint32 {
	var crc uint32
	for _, b := range key {
		crc = crc<<8 ^ uint32(crc16Table[byte(crc>>8)^b])
	}
	return crc
}

// hashCRC32 is twemproxy's crc32: bits 16-30 of the IEEE CRC-32, a 15-bit value.
func hashCRC32(key []byte) uint32 {
	return crc32.ChecksumIEEE(key) >> 16 & 0x7fff
}

// hashCRC32a is the full IEEE CRC-32.
func hashCRC32a(key []byte) uint32 {
	return crc32.ChecksumIEEE(key)
}
