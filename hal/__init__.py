"""Hardware abstraction layer: one abstract role per device, drivers picked by name.

The HAL knows devices and buses, nothing about OCPP or sessions. Tests and the
simulator fake the *bus* (gpiozero mock pins, pty serial ports, a pymodbus
server), never the driver.
"""
