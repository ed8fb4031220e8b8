"""The audit log's pure parts: RFC 6962 Merkle hashing and proofs, C2SP signed notes and
tlog checkpoints. Plain library: no Temporal, no gRPC, no storage."""
