"""ONVIF cameras: pull-point events, snapshots and camera health.

Modules, in the order data flows:

* ``config``: the ``cameras:`` entry (:class:`~doorwatch.adapters.onvif.config.CameraConfig`).
* ``client``: the typed boundary around ``onvif-zeep-async`` (the only code touching it).
* ``messages``: notification XML -> :class:`~doorwatch.adapters.onvif.messages.Notification`,
  parsed safely; shared by the daemon and ``doorwatch decode --format onvif``.
* ``normalise``: the topic table -> canonical events.
* ``camera``: one camera's subscription state machine and pull loop.
* ``snapshot``: JPEG snapshots for alerts.
* ``manager``: every camera, ``CameraManager.snapshot(camera_id)`` and ``wire(daemon)``.
* ``fake``: fake cameras for tests, the demo and ``doorwatch simulate camera``.

A camera entry::

    cameras:
      - id: cam-east
        host: 192.0.2.10
        username: doorwatch
        password_file: /etc/doorwatch/cam.pass      # or $CREDENTIALS_DIRECTORY/cam
        inputs: {AlarmIn_1: east-entrance}          # input token or DoorToken -> site door

Nothing here imports ``onvif`` at package import time: the config model is loaded by every
command, the camera code only when cameras are configured.
"""
