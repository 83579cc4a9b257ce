"""The history of generated images the discriminators also train on (Shrivastava et al. 2017).

The authors' code keeps 50 past fakes for the Market setting: half of each batch the discriminator
sees is swapped for older fakes, which damps oscillation. The pool draws from its own generator
and its contents and RNG state go into checkpoints, so a resumed run sees the same history.
"""

from __future__ import annotations

import torch


class HistoryPool:
    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same shape: each item is the new fake, or with probability 1/2 (once
        the pool is full) an older fake that the new one replaces in the pool."""
        if self.size == 0:
            return batch
        out = []
        for image in batch.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
                continue
            if torch.rand((), generator=self.generator).item() > 0.5:
                slot = int(torch.randint(self.size, (), generator=self.generator).item())
                out.append(self.images[slot].clone())
                self.images[slot] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        stored = torch.cat(self.images, 0).cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": stored, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        if int(state["size"]) != self.size:
            raise ValueError(f"history pool size {state['size']} in the checkpoint, {self.size} in the config")
        images = state["images"]
        self.images = [img.unsqueeze(0).to(device) for img in images] if images.numel() else []
        self.generator.set_state(state["rng"])
