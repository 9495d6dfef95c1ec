// placeholder: filled in by its owner; see ../kernels.ts for the contract
export {};
