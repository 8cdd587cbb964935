"""Azure Monitor's common alert schema: ``schemaId: azureMonitorCommonAlertSchema``, with
``data.essentials`` the same for every kind of alert and ``data.alertContext`` by signal type.
https://learn.microsoft.com/azure/azure-monitor/alerts/alerts-common-schema

``essentials.alertId`` is the same in the Fired and the Resolved notification of one alert, so
it is the dedup key; ``monitorCondition`` says which of the two this is.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from runner.format.model import Severity
from runner.routing.envelope import Alert, AlertStatus, EntityBag, text_labels
from runner.routing.formats.common import mapping, text
from runner.routing.limits import AlertError
from runner.routing.severity import AZURE

NAME = "azure_monitor"
SCHEMA_ID = "azureMonitorCommonAlertSchema"


def detect(doc: object) -> str | None:
    if isinstance(doc, Mapping) and doc.get("schemaId") == SCHEMA_ID:
        return NAME
    return None


def normalise(doc: object, where: str, fmt: str = NAME) -> list[Alert]:
    payload = mapping(doc, "an Azure Monitor alert", where)
    data = mapping(payload.get("data"), "`data`", where)
    essentials = mapping(data.get("essentials"), "`data.essentials`", where)
    alert_id = text(essentials.get("alertId"))
    if not alert_id:
        raise AlertError("an Azure Monitor alert must have data.essentials.alertId", path=where)
    custom = data.get("customProperties")
    labels = {
        **text_labels(custom if isinstance(custom, Mapping) else {}),
        **text_labels({k: essentials.get(k) for k in (
            "alertRule", "signalType", "monitoringService", "targetResourceType",
            "targetResourceGroup", "monitorCondition", "severity",
        )}),
    }  # fmt: skip
    bag = EntityBag()
    items = essentials.get("configurationItems")
    bag.add("hosts", items if isinstance(items, list) else [])
    condition = text(essentials.get("monitorCondition")).lower()
    return [
        Alert(
            source="azure-monitor",
            format=NAME,
            id=alert_id.rsplit("/", 1)[-1],
            dedup_key=alert_id,
            status=AlertStatus.RESOLVED if condition == "resolved" else AlertStatus.FIRING,
            severity=AZURE.get(text(essentials.get("severity")).lower(), Severity.MEDIUM),
            title=text(essentials.get("alertRule")) or text(essentials.get("description")),
            time=text(essentials.get("firedDateTime")),
            labels=MappingProxyType(labels),
            entities=bag.freeze(),
            raw=payload,
        )
    ]
