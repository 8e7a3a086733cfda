"""matmul and einsum: parity with PyTorch, first and second derivatives, errors."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import neural_arch as na
from neural_arch.autograd import gradcheck, gradgradcheck
from tests.helpers import check_op, requires_torch, torch


# ==== matmul ==========================================================================

@pytest.mark.parametrize("sa, sb", [
    ((3,), (3,)),              # dot product
    ((3,), (3, 2)),            # row vector
    ((2, 3), (3,)),            # column vector
    ((2, 3), (3, 4)),
    ((2, 2, 3), (3, 2)),       # batch on the left only
    ((2, 1, 2, 3), (3, 3, 2)), # batch dims broadcast both ways
    ((3,), (2, 3, 2)),         # 1-d against a batch
    ((2, 2, 3), (3,)),
])
def test_matmul_matches_torch(sa, sb):
    # matmul is bilinear: its second derivative (cross terms) is non-zero.
    check_op(na.matmul, [sa, sb], torch_fn=torch.matmul if torch else None)


def test_matmul_operator_and_constant_operand():
    check_op(lambda a, b: a @ b, [(2, 3), (3, 2)], torch_fn=lambda a, b: a @ b,
             grad_inputs=[0])


@settings(max_examples=15, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=2),
       mkn=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)))
def test_matmul_batch_broadcasting(shapes, mkn):
    m, k, n = mkn
    sa = shapes.input_shapes[0] + (m, k)
    sb = shapes.input_shapes[1] + (k, n)
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a0, b0 = rng.standard_normal(sa), rng.standard_normal(sb)
    a, b = na.Tensor(a0, requires_grad=True), na.Tensor(b0, requires_grad=True)
    y = na.matmul(a, b)
    assert y.shape == shapes.result_shape + (m, n)
    np.testing.assert_allclose(y.numpy(), np.matmul(a0, b0), rtol=1e-12)
    w = rng.standard_normal(y.shape)
    y.backward(na.Tensor(w))
    assert a.grad.shape == sa and b.grad.shape == sb
    if torch is not None:
        ta = torch.tensor(a0, requires_grad=True)
        tb = torch.tensor(b0, requires_grad=True)
        torch.matmul(ta, tb).backward(torch.tensor(w))
        np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_matmul_inner_dim_mismatch_names_both_shapes():
    a, b = na.Tensor(np.zeros((2, 3))), na.Tensor(np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\) do not align.*\(3\).*\(4\)"):
        na.matmul(a, b)
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\) do not align"):
        na.matmul(na.Tensor(np.zeros(3)), na.Tensor(np.zeros(4)))


def test_matmul_batch_mismatch_and_scalar_errors():
    a, b = na.Tensor(np.zeros((2, 2, 3))), na.Tensor(np.zeros((3, 3, 2)))
    with pytest.raises(ValueError, match=r"batch dims .*\(2,\) against \(3,\)"):
        na.matmul(a, b)
    with pytest.raises(ValueError, match="at least one dim"):
        na.matmul(na.Tensor(2.0), b)


# ==== einsum ==========================================================================

EINSUM_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 2)]),                  # matrix product
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),         # batch matmul
    ("i,j->ij", [(3,), (2,)]),                        # outer product
    ("i,i->", [(4,), (4,)]),                          # inner product
    ("ii->i", [(3, 3)]),                              # diagonal
    ("ii->", [(3, 3)]),                               # trace
    ("bii->b", [(2, 3, 3)]),                          # batched trace
    ("iij->ji", [(2, 2, 3)]),                         # diagonal with a free axis
    ("iii->i", [(2, 2, 2)]),                          # a letter three times
    ("ij->i", [(2, 3)]),                              # sum out an index
    ("ij->", [(2, 3)]),                               # sum everything
    ("ijk->kji", [(2, 3, 2)]),                        # permutation
    ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),       # three operands
    ("ij,ij->ij", [(1, 3), (2, 3)]),                  # a size-1 axis broadcasts
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (3, 3, 2)]),  # ellipsis with broadcasting
    ("i...->...", [(2, 3)]),
    ("ij,jk", [(2, 3), (3, 2)]),                      # implicit output
    ("ba", [(2, 3)]),                                 # implicit output is sorted
    ("Ab,bC", [(2, 3), (3, 2)]),                      # upper-case letters
    ("ij,kj->jik", [(2, 3), (2, 3)]),                 # index kept in output from both
]


@pytest.mark.parametrize("expr, shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum_matches_torch(expr, shapes):
    # Squared, so that single-operand (linear) patterns also get a meaningful
    # second derivative through the einsum of their gradient.
    check_op(lambda *xs: na.einsum(expr, *xs) ** 2, shapes,
             torch_fn=(lambda *xs: torch.einsum(expr, *xs) ** 2) if torch else None)


@requires_torch
def test_einsum_sums_ellipsis_dims_missing_from_output_like_torch():
    check_op(lambda x: na.einsum("...ij->ij", x), [(2, 3, 2)],
             torch_fn=lambda x: torch.einsum("...ij->ij", x), gradgrad=False)


def test_einsum_accepts_a_list_of_operands_and_spaces():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    y = na.einsum("ij, jk -> ik", [na.Tensor(a), na.Tensor(b)])
    np.testing.assert_allclose(y.numpy(), a @ b)


def test_einsum_third_order_derivative():
    # f = ||X^T X||_F^2; its 2nd and 3rd derivatives are einsums of einsums.
    x = na.Tensor(np.random.default_rng(3).standard_normal((2, 2)), requires_grad=True)

    def f(t):
        g = na.einsum("ij,ik->jk", t, t)
        return na.einsum("jk,jk->", g, g)
    def df(t):
        with na.enable_grad():   # gradcheck evaluates under no_grad
            return na.autograd.grad([f(t)], [t], create_graph=True)[0]
    g1 = df(x)
    assert gradcheck(df, [x])        # second derivative
    assert gradgradcheck(df, [x])    # third derivative
    # analytical: f = ||X^T X||_F^2, grad = 4 X X^T X
    a = x.numpy()
    np.testing.assert_allclose(g1.numpy(), 4 * a @ a.T @ a)


@pytest.mark.parametrize("expr, shapes, message", [
    ("ij,jk->ik", [(2, 3)], "name 2 operand"),
    ("ij->i", [(2, 3, 4)], "operand 0 has 3 dims but its subscripts 'ij' name 2"),
    ("ij,jk->ik", [(2, 3), (4, 2)], "index 'j' has size 3 in operand 0 .* but 4 in operand 1"),
    ("ij->ii", [(2, 2)], "output letter 'i' appears more than once"),
    ("ij->k", [(2, 2)], "output letter 'k' .* not in any input"),
    ("i1->i", [(2, 2)], "bad subscripts"),
    ("i...j...->i", [(2, 2)], "bad subscripts"),
])
def test_einsum_errors(expr, shapes, message):
    xs = [na.Tensor(np.zeros(s)) for s in shapes]
    with pytest.raises(ValueError, match=message):
        na.einsum(expr, *xs)


def test_einsum_rejects_non_tensors():
    with pytest.raises(TypeError, match="subscripts must be a string"):
        na.einsum(3, na.Tensor(np.zeros(2)))
    with pytest.raises(TypeError, match="operands must be Tensors or arrays"):
        na.einsum("i->i", [1.0, 2.0], 3)


def test_einsum_matches_matmul_gradients():
    rng = np.random.default_rng(5)
    a0, b0 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 2))
    grads = []
    for f in (lambda a, b: na.einsum("bij,bjk->bik", a, b), na.matmul):
        a, b = na.Tensor(a0, requires_grad=True), na.Tensor(b0, requires_grad=True)
        (f(a, b) ** 2).sum().backward()
        grads.append((a.grad.numpy(), b.grad.numpy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0])
    np.testing.assert_allclose(grads[0][1], grads[1][1])
