package journal

import (
	"encoding/binary"
	"fmt"
)

// A stored step record is a 10-byte header followed by the record's JSON.
// The header holds what the forward-only check compares (epoch, attempt,
// phase), so the committer checks a transition without decoding JSON.
//
//	byte 0     stepHeaderMagic
//	bytes 1–4  epoch (big-endian)
//	bytes 5–8  attempt (big-endian)
//	byte 9     phase: 0 pending, 1 running, 2 ended
const (
	stepHeaderMagic = 0x01
	stepHeaderLen   = 10
)

func encodeStep(rec *StepRecord) ([]byte, error) {
	return appendEncodedStep(make([]byte, 0, 256), rec)
}

// appendEncodedStep writes the stored form of rec (header and JSON) into
// out, which is empty (the room keyAndValue leaves for a value).
func appendEncodedStep(out []byte, rec *StepRecord) ([]byte, error) {
	p := stepProgress(rec)
	out = append(out[:0], stepHeaderMagic, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(out[1:5], uint32(p[0]))
	binary.BigEndian.PutUint32(out[5:9], uint32(p[1]))
	out[9] = byte(p[2])
	return appendStep(out, rec)
}

// stepHeader reads the progress of a stored step record.
func stepHeader(val []byte) ([3]int, error) {
	if len(val) < stepHeaderLen || val[0] != stepHeaderMagic {
		return [3]int{}, fmt.Errorf("damaged step record")
	}
	return [3]int{int(binary.BigEndian.Uint32(val[1:5])), int(binary.BigEndian.Uint32(val[5:9])), int(val[9])}, nil
}

func decodeStep(val []byte, rec *StepRecord) error { return decodeStepIn(val, rec, nil) }

// decodeStepIn is decodeStep with the record's times taken from times.
func decodeStepIn(val []byte, rec *StepRecord, times *timeSlab) error {
	if len(val) < stepHeaderLen || val[0] != stepHeaderMagic {
		return fmt.Errorf("damaged step record")
	}
	return decodeStepJSONIn(val[stepHeaderLen:], rec, times)
}
