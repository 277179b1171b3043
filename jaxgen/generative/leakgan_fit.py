"""Host side of LeakGAN: SeqGAN's (:mod:`jaxgen.generative.seqgan_fit`: the oracle and COCO
data, NLL-oracle / NLL-test / BLEU / self-BLEU per epoch and at the end, samples, the CLI) on
the LeakGAN module. ``--task oracle --seq-len 40`` samples the oracle's data at length 40."""
from __future__ import annotations

from jaxgen.generative import leakgan as L
from jaxgen.generative.seqgan_fit import SeqGANFamily, load_task  # noqa: F401  (load_task: the data)

FAMILY = SeqGANFamily(L)
