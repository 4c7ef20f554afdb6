package snap

// crc32Combine returns the CRC-32C of A||B from crcA = CRC(A), crcB = CRC(B)
// and len(B), without B. A snapshot's data is streamed to its file before
// its length, which the header (covered by the same checksum, ahead of the
// data) holds, is known; the checksum of the header and metadata is
// combined with the data's afterwards. hash/crc32 has no combine; this is
// the standard GF(2) construction: appending n zero bytes to a message is a
// linear map on the CRC register, applied here by repeated squaring of the
// one-zero-bit operator.
func crc32Combine(crcA, crcB uint32, lenB int64) uint32 {
	if lenB <= 0 {
		return crcA
	}
	var even, odd [32]uint32 // operators for 2^k zero bits
	// odd: one zero bit. Row 0 is the (reflected) polynomial; row i>0
	// shifts the register by one.
	odd[0] = castagnoliPoly
	row := uint32(1)
	for i := 1; i < 32; i++ {
		odd[i] = row
		row <<= 1
	}
	gf2Square(&even, &odd) // two zero bits
	gf2Square(&odd, &even) // four zero bits
	// Each pass applies one more power-of-two count of zero bytes, the
	// first being one byte (eight bits).
	for {
		gf2Square(&even, &odd)
		if lenB&1 != 0 {
			crcA = gf2Times(&even, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
		gf2Square(&odd, &even)
		if lenB&1 != 0 {
			crcA = gf2Times(&odd, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
	}
	return crcA ^ crcB
}

// castagnoliPoly is crc32.Castagnoli, bit-reversed (the table form).
const castagnoliPoly = 0x82f63b78

func gf2Times(mat *[32]uint32, vec uint32) uint32 {
	var sum uint32
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[32]uint32) {
	for i := range 32 {
		square[i] = gf2Times(mat, mat[i])
	}
}
