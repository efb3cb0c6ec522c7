"""Safety: the supervisor that alone closes contactors, and the guards that raise faults through it."""
