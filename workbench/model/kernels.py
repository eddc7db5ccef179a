"""CPU kernels of the frame CNN, apart from the model so that mmmsba.py reads top to bottom.

    conv_nhwc_gemm   a 3-channel channels-last conv as one GEMM over its patches (several times oneDNN's speed)
    ConvGemmGrad     oneDNN's forward and input gradient, the weight gradient as one GEMM (oneDNN's bf16 weight
                     gradient of strided 3x3 convs is 1.5-5x slower and wrong on 1x1 inputs)
    conv             the conv a FrameCNN layer runs: ConvGemmGrad on the CPU in training, else F.conv2d
    conv_weights     a conv's weights with an eval-mode BatchNorm folded in
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def patches(x: torch.Tensor, kh: int, kw: int, stride, padding) -> tuple[torch.Tensor, int, int]:
    """The (N*Ho*Wo, kh*kw*C) patch matrix of a channels-last (N, H, W, C) input (zero padding), and Ho, Wo."""
    N, H, W, C = x.shape
    (sh, sw), (ph, pw) = stride, padding
    if ph or pw:
        x = F.pad(x, (0, 0, pw, pw, ph, ph))
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    sN, sH, sW, sC = x.stride()
    cols = x.as_strided((N, Ho, Wo, kh, kw, C), (sN, sh * sH, sw * sW, sH, sW, sC)).reshape(N * Ho * Wo, kh * kw * C)
    return cols, Ho, Wo


def conv_nhwc_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride, padding) -> torch.Tensor:
    """conv2d (groups 1, dilation 1, zero padding) of a channels-last (N, H, W, C) input as one GEMM over its patches.

    On the CPU this is several times faster than oneDNN for a 3-channel input, forward and (weight) backward.
    Returns (N, O, Ho, Wo) in channels-last memory.
    """
    N = x.shape[0]
    O, C, kh, kw = weight.shape
    cols, Ho, Wo = patches(x, kh, kw, stride, padding)
    w = weight.permute(2, 3, 1, 0).reshape(kh * kw * C, O).contiguous()  # (kh, kw, C) order, like the patches
    out = torch.addmm(bias, cols, w) if bias is not None else cols @ w
    return out.view(N, Ho, Wo, O).permute(0, 3, 1, 2)


class ConvGemmGrad(torch.autograd.Function):
    """conv2d of a channels-last input (oneDNN forward and input gradient) whose weight gradient is one GEMM.

    On the CPU oneDNN's weight gradient of these strided 3x3 convolutions runs far below GEMM speed in bf16
    (1.5-5x slower than patches^T @ grad) and returns garbage for a 1x1 input. Same function, same gradients.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.conf = (tuple(stride), tuple(padding), bias is not None)
        return F.conv2d(x, weight, bias, stride, padding)  # x: (N, C, H, W) channels-last

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        stride, padding, has_bias = ctx.conf
        O, C, kh, kw = weight.shape
        dx = None
        if ctx.needs_input_grad[0]:
            dx = torch.ops.aten.convolution_backward(gy, x, weight, None, stride, padding, (1, 1), False, (0, 0), 1,
                                                     (True, False, False))[0]
        cols, _, _ = patches(x.permute(0, 2, 3, 1), kh, kw, stride, padding)  # (N*Ho*Wo, kh*kw*C)
        g = gy.permute(0, 2, 3, 1).reshape(-1, O).to(cols.dtype)  # (N*Ho*Wo, O)
        dw = (cols.t() @ g).view(kh, kw, C, O).permute(3, 2, 0, 1).to(weight.dtype)  # (O, C, kh, kw)
        db = g.sum(0, dtype=torch.float32).to(weight.dtype) if has_bias else None
        return dx, dw, db, None, None


def conv(x: torch.Tensor, conv: nn.Conv2d, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """`conv` with weights (w, b) on a channels-last (N, C, H, W) input; on the CPU in training, ConvGemmGrad."""
    plain = conv.groups == 1 and conv.dilation == (1, 1) and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
    if x.device.type == "cpu" and plain and torch.is_grad_enabled() and w.requires_grad:
        w, b = w.to(x.dtype), (b.to(x.dtype) if b is not None else None)  # autocast's casts, made explicit
        return ConvGemmGrad.apply(x.contiguous(memory_format=torch.channels_last), w, b, conv.stride, conv.padding)
    return F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)


def conv_weights(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The conv's weight and bias, with an eval-mode BatchNorm folded in when `bn` is given."""
    if bn is None:
        return conv.weight, conv.bias
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    return conv.weight * scale.view(-1, 1, 1, 1), (bias - bn.running_mean) * scale + bn.bias
