//! The `devices:` key: which devices a deployment loads a pipeline on (see
//! [`crate::pool`]). Absent, one pipeline runs on the selected device; `auto` takes every
//! device of the selected backend; a list names them (`[cuda:0, cuda:1]`, `[cpu]`).

use serde::{Deserialize, Serialize, Serializer};

use crate::device::DeviceId;

/// At most this many devices in a list: more GPUs than one host holds.
pub const MAX_DEVICES: usize = 64;

/// The `devices:` value, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceList {
    /// Every device of the selected backend that the probe finds.
    Auto,
    /// These devices, in this order (distinct, all of one backend).
    Listed(Vec<DeviceId>),
}

impl Serialize for DeviceList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DeviceList::Auto => s.serialize_str("auto"),
            DeviceList::Listed(v) => v.serialize(s),
        }
    }
}

/// `devices:` as the YAML parser reads it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawDevices {
    One(String),
    Many(Vec<String>),
}

impl RawDevices {
    pub(super) fn parse(self) -> Result<DeviceList, String> {
        let names = match self {
            RawDevices::One(s) if s.trim().eq_ignore_ascii_case("auto") => {
                return Ok(DeviceList::Auto);
            }
            RawDevices::One(s) => vec![s],
            RawDevices::Many(v) => v,
        };
        if names.is_empty() {
            return Err("the list is empty: name a device, or remove the key".into());
        }
        if names.len() > MAX_DEVICES {
            return Err(format!(
                "{} devices listed; the maximum is {MAX_DEVICES}",
                names.len()
            ));
        }
        let mut out: Vec<DeviceId> = Vec::with_capacity(names.len());
        for n in &names {
            let id = DeviceId::parse(n)?;
            if out.contains(&id) {
                return Err(format!("{id} is listed twice"));
            }
            if let Some(first) = out.first()
                && first.backend != id.backend
            {
                return Err(format!(
                    "{first} and {id} are on different backends; one deployment runs one"
                ));
            }
            out.push(id);
        }
        Ok(DeviceList::Listed(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Backend;

    fn parse(v: &str) -> Result<DeviceList, String> {
        serde_yaml_ng::from_str::<RawDevices>(v).unwrap().parse()
    }

    #[test]
    fn lists_auto_and_single_names_parse() {
        assert_eq!(parse("auto").unwrap(), DeviceList::Auto);
        assert_eq!(
            parse("[cuda:0, CUDA:1]").unwrap(),
            DeviceList::Listed(vec![
                DeviceId::new(Backend::Cuda, 0),
                DeviceId::new(Backend::Cuda, 1)
            ])
        );
        assert_eq!(
            parse("cpu").unwrap(),
            DeviceList::Listed(vec![DeviceId::new(Backend::Cpu, 0)])
        );
        assert_eq!(DeviceId::parse("cuda").unwrap().to_string(), "cuda:0");
    }

    #[test]
    fn libtorch_devices_parse_with_and_without_an_index() {
        assert_eq!(
            parse("[torch:cuda:0, Torch:CUDA:1]").unwrap(),
            DeviceList::Listed(vec![
                DeviceId::new(Backend::TorchCuda, 0),
                DeviceId::new(Backend::TorchCuda, 1)
            ])
        );
        let cuda = DeviceId::parse("torch:cuda").unwrap();
        assert_eq!(cuda, DeviceId::new(Backend::TorchCuda, 0));
        assert_eq!(cuda.to_string(), "torch:cuda:0");
        for one in ["torch:cpu", "torch:mps"] {
            let id = DeviceId::parse(one).unwrap();
            assert_eq!((id.index, id.to_string()), (0, one.to_string()));
        }
        let e = parse("[torch:cpu:1]").unwrap_err();
        assert!(e.contains("pipelines_per_device"), "{e}");
        let e = parse("[torch:cuda:x]").unwrap_err();
        assert!(e.contains("must be a number, e.g. torch:cuda:0"), "{e}");
        let e = parse("[torch:cuda:0, cuda:1]").unwrap_err();
        assert!(e.contains("different backends"), "{e}");
        assert!(parse("[torch]").unwrap_err().contains("not a device"));
    }

    #[test]
    fn a_deployment_names_the_line_of_a_bad_list() {
        use crate::config::{ConfigSource, Deployment};
        let yaml = |devices: &str| {
            format!(
                "device: cuda\ndevices: {devices}\npipeline:\n  detectors:\n    - {{ role: players, \
                 library: x.so }}\n  tracker: {{ plugin: bytetrack }}\n"
            )
        };
        let parse = |text: &str| Deployment::parse(text, ConfigSource::Embedded, ".".into());
        let d = parse(&yaml("[cuda:0, cuda:1]")).unwrap();
        assert_eq!(
            d.file.devices,
            Some(DeviceList::Listed(vec![
                DeviceId::new(Backend::Cuda, 0),
                DeviceId::new(Backend::Cuda, 1)
            ]))
        );
        assert_eq!(
            parse(&yaml("auto")).unwrap().file.devices,
            Some(DeviceList::Auto)
        );
        let e = parse(&yaml("[cuda:0, cpu]")).unwrap_err().to_string();
        assert!(
            e.contains(":2:1") && e.contains("different backends"),
            "{e}"
        );
    }

    #[test]
    fn bad_lists_say_what_is_wrong() {
        for (v, needle) in [
            ("[]", "empty"),
            ("[cuda:0, cuda:0]", "twice"),
            ("[cuda:0, cpu]", "different backends"),
            ("[gpu:0]", "not a device"),
            ("[cuda:x]", "must be a number"),
            ("[cpu:1]", "pipelines_per_device"),
        ] {
            let e = parse(v).unwrap_err();
            assert!(e.contains(needle), "{v}: {e}");
        }
    }
}
