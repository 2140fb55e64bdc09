# SPDX-License-Identifier: Apache-2.0
# register_cuda: pool planes pinned with cudaHostRegister and read as CUDA arrays.
# Without a GPU the registration must fail with engrampool.Error (nothing pinned, no
# crash) and the GPU part skips.
import numpy as np
import pytest

import engrampool
from conftest import FP8_MODEL


def test_register_cuda(pool_setup):
    probe = engrampool.cuda_probe()
    with engrampool.Pool(pool_setup.uri) as pool:
        t = pool.table("%s/layer1" % FP8_MODEL["name"])
        v, s = t.planes(0, 12)
        if not probe["usable"]:
            with pytest.raises(engrampool.Error) as e:
                engrampool.register_cuda(v, s)
            assert str(e.value)
            with pytest.raises(ValueError):
                engrampool.register_cuda()
            pytest.skip("no usable GPU: %s" % (probe["reason"] or "CUDA not built"))
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("this torch has no CUDA")
        with engrampool.register_cuda(v, s) as reg:
            cv, cs = reg.views
            iface = cv.__cuda_array_interface__
            assert iface["shape"] == v.shape and iface["strides"] == v.strides and iface["typestr"] == "|u1"
            gv = torch.as_tensor(cv, device="cuda")
            rows = np.array([0, 5, len(v) - 1])
            assert np.array_equal(gv[torch.from_numpy(rows).cuda()].cpu().numpy(), v[rows])
