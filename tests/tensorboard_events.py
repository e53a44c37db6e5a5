"""Reads the scalars of a run's TensorBoard event files (TFRecord framing, tensorboardX's Event proto)."""

import os
import struct


def scalars(directory):
  """[(tag, step, value)] of every scalar event in `directory`'s event files, in file then write order."""
  from tensorboardX.proto.event_pb2 import Event
  found = []
  for name in sorted(n for n in os.listdir(directory) if n.startswith("events.out.tfevents")):
    with open(os.path.join(directory, name), "rb") as f:
      data = f.read()
    at = 0
    while at < len(data):
      (length,) = struct.unpack("<Q", data[at:at + 8])
      event = Event.FromString(data[at + 12:at + 12 + length])  # past the length and its CRC
      at += 12 + length + 4  # the record and its CRC
      found += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
  return found
