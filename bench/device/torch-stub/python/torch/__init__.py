"""A fake `torch` for machines without PyTorch (see bench/device/torch-stub/README.md).

Tensors carry a shape, a dtype, a device and contiguity, but no data. The fake extension that
torch.utils.cpp_extension.load_inline returns checks every launcher call against the C++
declarations it was given (a tensor for each `const at::Tensor&`, an int for each `int64_t`) and
appends (launcher, args) to LAUNCHES.
"""
import builtins as _b

LAUNCHES = []


class dtype:
    def __init__(self, name, itemsize):
        self.name = name
        self.itemsize = itemsize

    def __repr__(self):
        return f'torch.{self.name}'


float32 = dtype('float32', 4)
float16 = dtype('float16', 2)
bfloat16 = dtype('bfloat16', 2)
float64 = dtype('float64', 8)
int32 = dtype('int32', 4)
int64 = dtype('int64', 8)
uint8 = dtype('uint8', 1)
uint32 = dtype('uint32', 4)
bool = dtype('bool', 1)  # noqa: A001 (torch.bool shadows the builtin, as in PyTorch)
float = float32  # noqa: A001
half = float16
int = int32  # noqa: A001


class device:
    def __init__(self, type, index=None):  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index
        elif ':' in type:
            type, i = type.split(':')
            index = _b.int(i)
        self.type = type
        self.index = index if index is not None or type != 'cuda' else 0

    def __eq__(self, other):
        other = device(other) if isinstance(other, str) else other
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __repr__(self):
        return f"device(type='{self.type}', index={self.index})" if self.index is not None else f"device(type='{self.type}')"

    def __str__(self):
        return f'{self.type}:{self.index}' if self.index is not None else self.type


class Size(tuple):
    pass


_next_id = [1]


class Tensor:
    def __init__(self, shape, dtype=float32, device='cpu', contiguous=True, storage=None):  # noqa: A002
        self._shape = Size(_b.int(x) for x in shape)
        self.dtype = dtype
        self.device = globals()['device'](device) if not isinstance(device, globals()['device']) else device
        self._contiguous = contiguous
        if storage is None:
            storage = _next_id[0]
            _next_id[0] += 1
        self.storage = storage

    @property
    def shape(self):
        return self._shape

    @property
    def is_cuda(self):
        return self.device.type == 'cuda'

    def size(self, i=None):
        return self._shape if i is None else self._shape[i]

    def dim(self):
        return len(self._shape)

    def numel(self):
        n = 1
        for x in self._shape:
            n *= x
        return n

    def is_contiguous(self):
        return self._contiguous

    def contiguous(self):
        return Tensor(self._shape, self.dtype, self.device)

    def t(self):
        return Tensor(tuple(reversed(self._shape)), self.dtype, self.device, contiguous=False, storage=self.storage)

    def view(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], dtype):
            d = shape[0]
            if d.itemsize != self.dtype.itemsize:
                raise RuntimeError('view: dtypes of different sizes')
            return Tensor(self._shape, d, self.device, self._contiguous, self.storage)
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        n = 1
        for x in shape:
            n *= x
        if n != self.numel():
            raise RuntimeError(f'view: shape {list(shape)} is invalid for input of size {self.numel()}')
        return Tensor(shape, self.dtype, self.device, self._contiguous, self.storage)

    def __getitem__(self, key):
        if not isinstance(key, slice) or self.dim() != 1:
            raise NotImplementedError('fake torch: only 1-D slices')
        start, stop, step = key.indices(self._shape[0])
        return Tensor((len(range(start, stop, step)),), self.dtype, self.device, step == 1, self.storage)

    def __repr__(self):
        return f'FakeTensor(shape={list(self._shape)}, dtype={self.dtype!r}, device={self.device})'


def _make(size, dtype, device):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return Tensor(size, dtype or float32, device or 'cpu')


def zeros(*size, dtype=None, device=None):
    return _make(size, dtype, device)


def empty(*size, dtype=None, device=None):
    return _make(size, dtype, device)


def randn(*size, dtype=None, device=None):
    return _make(size, dtype, device)


class cuda:  # noqa: N801 (a namespace, as torch.cuda)
    @staticmethod
    def is_available():
        return True

    @staticmethod
    def current_device():
        return 0
