package sharding

import (
	"crypto/md5"
	"errors"
	"testing"
)

// The values for "apple" are libmemcached's tests/hash_results.h, which twemproxy's
// src/test_all.c checks too.
func TestHashVectors(t *testing.T) {
	tests := []struct {
		name string
		want uint32
	}{
		{"one_at_a_time", 2297466611},
		{"md5", 3195025439},
		{"crc16", 3662830516},
		{"crc32", 10542},
		{"crc32a", 2838417488},
		{"fnv1_64", 473199127},
		{"fnv1a_64", 1488911807},
		{"fnv1_32", 67176023},
		{"fnv1a_32", 280767167},
		{"hsieh", 3738850110},
		{"murmur", 4142305122},
		{"jenkins", 1442444624},
		{"xxhash", 1553232543},
	}
	for _, tt := range tests {
		h, err := LookupHash(tt.name)
		if err != nil {
			t.Fatalf("LookupHash(%q): %v", tt.name, err)
		}
		if got := h([]byte("apple")); got != tt.want {
			t.Errorf("%s(\"apple\") = %d, want %d", tt.name, got, tt.want)
		}
	}
	if len(tests) != len(HashNames()) {
		t.Errorf("%d vectors for %d hashes", len(tests), len(HashNames()))
	}
}

// High bytes are read as signed chars by several of twemproxy's functions.
func TestHashSignedBytes(t *testing.T) {
	const mask32 = 0xffffffff
	tests := []struct {
		name string
		fn   HashFunc
		want uint32
	}{
		{"fnv1a_64", hashFNV1a_64, (0x84222325 ^ 0xffffff80) * 0x1b3 & mask32},
		{"fnv1_64", hashFNV1_64, 0x84222325*0x1b3&mask32 ^ 0xffffff80},
		{"fnv1a_32", hashFNV1a_32, (2166136261 ^ 0xffffff80) * 16777619 & mask32},
		{"fnv1_32", hashFNV1_32, 2166136261*16777619&mask32 ^ 0xffffff80},
	}
	for _, tt := range tests {
		if got := tt.fn([]byte{0x80}); got != tt.want {
			t.Errorf("%s(0x80) = %#x, want %#x", tt.name, got, tt.want)
		}
	}
	// one_at_a_time adds the sign-extended byte.
	h := uint32(0xffffff80)
	h += h << 10
	h ^= h >> 6
	h += h << 3
	h ^= h >> 11
	h += h << 15
	if got := hashOneAtATime([]byte{0x80}); got != h {
		t.Errorf("one_at_a_time(0x80) = %#x, want %#x", got, h)
	}
}

func TestHashQuirks(t *testing.T) {
	for i := range 1000 {
		key := []byte{byte(i), byte(i >> 8), 'k', 'e', 'y'}
		if got := hashCRC32(key); got > 0x7fff {
			t.Fatalf("crc32(%q) = %#x, more than 15 bits", key, got)
		}
	}
	// crc16 is not masked to 16 bits.
	if got := hashCRC16([]byte("apple")); got <= 0xffff {
		t.Errorf("crc16(apple) = %#x, expected bits above 16", got)
	}
	// murmur seeds with the length: the empty key hashes to the finaliser of 0.
	if got := hashMurmur(nil); got != 0 {
		t.Errorf("murmur(\"\") = %d, want 0", got)
	}
	if got := hashHsieh(nil); got != 0 {
		t.Errorf("hsieh(\"\") = %d, want 0", got)
	}
	if got, want := hashJenkins(nil), uint32(0xdeadbeef+13); got != want {
		t.Errorf("jenkins(\"\") = %#x, want %#x", got, want)
	}
}

// Every length of the block-wise hashes' tails.
func TestHashTails(t *testing.T) {
	key := []byte("abcdefghijklmnopqrstuvwxyz\x80\x81\xfe\xff")
	seen := map[uint32]string{}
	for _, name := range []string{"hsieh", "murmur", "jenkins"} {
		h, _ := LookupHash(name)
		for n := range len(key) + 1 {
			v := h(key[:n])
			if v2 := h(append([]byte(nil), key[:n]...)); v2 != v {
				t.Fatalf("%s is not deterministic", name)
			}
			if prev, dup := seen[v]; dup && n > 0 {
				t.Errorf("%s(%q) = %s", name, key[:n], prev)
			}
			seen[v] = name + string(key[:n])
		}
	}
}

func TestKetamaPointHash(t *testing.T) {
	d := md5.Sum([]byte("server1-8"))
	if got := ketamaPoint(&d, 0); got != 3853726576 {
		t.Errorf("point 0 of server1-8 = %d, want 3853726576", got)
	}
	if got := ketamaPoint(&d, 3); got != 2667054752 {
		t.Errorf("point 3 of server1-8 = %d, want 2667054752", got)
	}
}

func TestLookupHash(t *testing.T) {
	for _, name := range HashNames() {
		if _, err := LookupHash(name); err != nil {
			t.Errorf("LookupHash(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "FNV1A_64", "fnv1a-64", "sha1"} {
		if _, err := LookupHash(name); !errors.Is(err, ErrUnknownHash) {
			t.Errorf("LookupHash(%q) = %v, want ErrUnknownHash", name, err)
		}
	}
	if !IsTwemproxyHash("jenkins") || IsTwemproxyHash("xxhash") {
		t.Error("IsTwemproxyHash is wrong")
	}
	if h, _ := LookupHash(DefaultHash); h([]byte("apple")) != 1488911807 {
		t.Error("DefaultHash is not fnv1a_64")
	}
}
