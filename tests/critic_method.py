"""A method with a critic, for the loop's tests (test_critics.py), in process and as a torchrun
script (``python critic_method.py CONFIG``): t2i's editor, and a small convolution that learns to
read the editor's velocity off noisy pictures, as a fake-score model would. Its loss reaches the
editor's weights on purpose: the loop must keep that gradient from the editor."""

import sys

import torch
import torch.nn.functional as F
from torch import nn

from unpaired_edit.core.conventions import add_noise
from unpaired_edit.training.config import load_config
from unpaired_edit.training.loop import train
from unpaired_edit.training.methods.base import Critic, per_sample
from unpaired_edit.training.methods.t2i import T2IOptions, TextToImage


class WithCritic(TextToImage):
    updates = 3

    def critics(self, model):
        self.fake = nn.Conv2d(3, 3, 3, padding=1)
        return {"fake": Critic(self.fake, updates=self.updates, lr=1e-2)}

    def critic_loss(self, name, model, batch, rngs, state):
        x0 = batch["image"].to(model.device, model.dtype)
        eps = per_sample(rngs, x0.shape[1:]).to(x0)
        t = per_sample(rngs, (), torch.rand).to(x0)
        x_t = add_noise(x0, t, eps)
        velocity = model.predict(x_t, t, model.text_embeddings(list(batch["caption"])))  # with gradient
        loss = F.mse_loss(self.fake(x_t), velocity)
        return loss, {"loss": loss.item()}


def run(config_path, updates: int = 3, resume: bool = False):
    config, options = load_config(config_path, "t2i", T2IOptions)
    method = WithCritic(config, options)
    method.updates = updates
    return train(method, resume=resume)


if __name__ == "__main__":
    run(sys.argv[1])
