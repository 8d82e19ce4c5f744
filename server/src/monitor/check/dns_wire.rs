//! One DNS question and its answer on the wire (UDP, or TCP when truncated), and the address
//! lookup probes use when `--probe-resolver` names a resolver. Kept apart from the DNS check so
//! the network policy can resolve through it without depending on the check.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use app::model::ErrorClass;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// A failed exchange: its class and a short explanation.
#[derive(Debug)]
pub struct WireError(pub ErrorClass, pub String);

/// Largest answer read over TCP.
const TCP_ANSWER_CAP: usize = 65_535;

/// Longest a lookup waits for each answer (callers bound the whole check as well).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The A and AAAA records of `host` from `server`, asked at the same time.
pub async fn lookup(server: SocketAddr, host: &str) -> Result<Vec<IpAddr>, String> {
    let name = Name::from_ascii(host).map_err(|e| format!("'{host}' is not a DNS name: {e}"))?;
    let (v4, v6) = tokio::join!(ask(server, &name, RecordType::A), ask(server, &name, RecordType::AAAA));
    let mut found = Vec::new();
    let mut failed = None;
    for answer in [v4, v6] {
        match answer {
            Ok(message) if message.metadata.response_code == ResponseCode::NXDomain => {
                return Err(format!("{host}: no such name (NXDOMAIN from {server})"));
            }
            Ok(message) => found.extend(message.answers.iter().filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })),
            Err(WireError(_, why)) => failed = Some(why),
        }
    }
    match (found.is_empty(), failed) {
        (false, _) => Ok(found),
        (true, Some(why)) => Err(why),
        (true, None) => Err(format!("{host}: no addresses")),
    }
}

async fn ask(server: SocketAddr, name: &Name, kind: RecordType) -> Result<Message, WireError> {
    let id = fastrand::u16(..);
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name.clone(), kind));
    let bytes = query.to_vec().map_err(|e| WireError(ErrorClass::Protocol, format!("could not encode: {e}")))?;
    let exchange = async {
        match over_udp(server, &bytes, id).await? {
            (m, _) if m.metadata.truncation => over_tcp(server, &bytes, id).await.map(|(m, _)| m),
            (m, _) => Ok(m),
        }
    };
    tokio::time::timeout(LOOKUP_TIMEOUT, exchange)
        .await
        .map_err(|_| WireError(ErrorClass::Timeout, format!("no answer from {server} within 5 s")))?
}

fn decode(buf: &[u8], id: u16) -> Result<Message, WireError> {
    let message =
        Message::from_vec(buf).map_err(|e| WireError(ErrorClass::Protocol, format!("not a DNS answer: {e}")))?;
    if message.metadata.id != id || message.metadata.message_type != MessageType::Response {
        return Err(WireError(ErrorClass::Protocol, "an answer to another question".into()));
    }
    Ok(message)
}

pub async fn over_udp(server: SocketAddr, query: &[u8], id: u16) -> Result<(Message, usize), WireError> {
    let local: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket =
        UdpSocket::bind(local).await.map_err(|e| WireError(ErrorClass::Connect, format!("no socket: {}", e.kind())))?;
    socket.connect(server).await.map_err(|e| WireError(ErrorClass::Connect, format!("{server}: {}", e.kind())))?;
    socket.send(query).await.map_err(|e| WireError(ErrorClass::Connect, format!("{server}: {}", e.kind())))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = socket
            .recv(&mut buf)
            .await
            .map_err(|e| WireError(ErrorClass::Connect, format!("{server}: {}", e.kind())))?;
        // A stray datagram (another id) is ignored; the timeout bounds the wait.
        match decode(&buf[..n], id) {
            Ok(m) => return Ok((m, n)),
            Err(_) => continue,
        }
    }
}

pub async fn over_tcp(server: SocketAddr, query: &[u8], id: u16) -> Result<(Message, usize), WireError> {
    let mut stream = TcpStream::connect(server)
        .await
        .map_err(|e| WireError(ErrorClass::Connect, format!("{server} (TCP): {}", e.kind())))?;
    let len = u16::try_from(query.len()).map_err(|_| WireError(ErrorClass::Protocol, "query too long".into()))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    let io = |e: std::io::Error| WireError(ErrorClass::Connect, format!("{server} (TCP): {}", e.kind()));
    stream.write_all(&framed).await.map_err(io)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(io)?;
    let n = usize::from(u16::from_be_bytes(len)).min(TCP_ANSWER_CAP);
    let mut buf = vec![0u8; n];
    stream.read_exact(&mut buf).await.map_err(io)?;
    Ok((decode(&buf, id)?, n))
}
